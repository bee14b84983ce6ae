// Package layers holds no code: its test enforces the dependency direction
// described in DESIGN.md (the engine never imports a concrete adapter,
// adapters never import the engine, only the command knows every adapter).
package layers
