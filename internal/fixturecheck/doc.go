// Package fixturecheck holds tests that guard the fixtures in testdata/: the W&B run folders
// in testdata/wandb/fixtures are regenerated with the venv's wandb SDK and compared with the
// committed ones, so a new SDK whose output changes is noticed. It has no non-test code.
package fixturecheck
