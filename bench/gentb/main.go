// Command gentb writes a TensorBoard event file for the benchmarks
// (bench/run.sh): one run folder, one file, -steps steps of -keys scalars,
// one event per value as tensorboardX and Keras write them. Even keys are
// simple_value scalars (tensorboardX, PyTorch), odd keys TF2 float tensor
// scalars whose first event names the scalars plugin (tf.summary, Keras).
// Values are exact in float32, so every reader sums the same numbers.
//
//	gentb -out DIR -steps N -keys K
//
// It prints {"points", "sum"} as one JSON line.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/runferry/runferry/internal/tfevents"
	"google.golang.org/protobuf/encoding/protowire"
)

func main() {
	out := flag.String("out", "", "folder to write (created)")
	steps := flag.Int("steps", 25000, "steps")
	keys := flag.Int("keys", 20, "keys per step")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: gentb -out DIR [-steps N] [-keys K]")
		os.Exit(2)
	}
	if err := run(*out, *steps, *keys); err != nil {
		fmt.Fprintln(os.Stderr, "gentb:", err)
		os.Exit(1)
	}
}

func run(out string, steps, keys int) error {
	dir := filepath.Join(out, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "events.out.tfevents.1750000000.gentb"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	const base = 1_750_000_000.0
	var rec, ev []byte
	put := func(ev []byte) error {
		rec = tfevents.AppendRecord(rec[:0], ev)
		_, err := w.Write(rec)
		return err
	}
	ev = protowire.AppendTag(ev[:0], 1, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(base))
	ev = protowire.AppendTag(ev, 3, protowire.BytesType)
	ev = protowire.AppendString(ev, "brain.Event:2")
	if err := put(ev); err != nil {
		return err
	}
	var points int64
	var sum float64
	var value, summary []byte
	for s := range steps {
		for k := range keys {
			v := float32(s%1000)*0.5 + float32(k)
			points++
			sum += float64(v)
			value = protowire.AppendTag(value[:0], 1, protowire.BytesType)
			value = protowire.AppendString(value, fmt.Sprintf("key%02d", k))
			if k%2 == 0 {
				value = protowire.AppendTag(value, 2, protowire.Fixed32Type)
				value = protowire.AppendFixed32(value, math.Float32bits(v))
			} else {
				if s == 0 {
					var pd, md []byte
					pd = protowire.AppendTag(pd, 1, protowire.BytesType)
					pd = protowire.AppendString(pd, "scalars")
					md = protowire.AppendTag(md, 1, protowire.BytesType)
					md = protowire.AppendBytes(md, pd)
					value = protowire.AppendTag(value, 9, protowire.BytesType)
					value = protowire.AppendBytes(value, md)
				}
				var t []byte
				t = protowire.AppendTag(t, 1, protowire.VarintType)
				t = protowire.AppendVarint(t, tfevents.DTFloat)
				t = protowire.AppendTag(t, 2, protowire.BytesType)
				t = protowire.AppendBytes(t, nil)
				t = protowire.AppendTag(t, 4, protowire.BytesType)
				t = protowire.AppendBytes(t, binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
				value = protowire.AppendTag(value, 8, protowire.BytesType)
				value = protowire.AppendBytes(value, t)
			}
			summary = protowire.AppendTag(summary[:0], 1, protowire.BytesType)
			summary = protowire.AppendBytes(summary, value)
			ev = protowire.AppendTag(ev[:0], 1, protowire.Fixed64Type)
			ev = protowire.AppendFixed64(ev, math.Float64bits(base+float64(s)*0.01+float64(k)*1e-4))
			ev = protowire.AppendTag(ev, 2, protowire.VarintType)
			ev = protowire.AppendVarint(ev, uint64(s))
			ev = protowire.AppendTag(ev, 5, protowire.BytesType)
			ev = protowire.AppendBytes(ev, summary)
			if err := put(ev); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"points": points, "sum": sum})
}
