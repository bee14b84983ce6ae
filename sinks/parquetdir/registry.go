package parquetdir

import (
	"context"
	"fmt"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.RegistryWriter = (*Sink)(nil)

// CoverageVersionNoRun counts model versions whose source run the archive
// does not hold: the version is archived with its run's origin, which a
// restore can point at the run only once the archive holds it.
const CoverageVersionNoRun = "model versions whose source run is not in the archive (the run's origin kept in model_versions.run)"

// PutRegisteredModel stores m as its rows of registered_models and
// model_versions, keyed by m's origin (see sinks.RegistryWriter): a model
// archived earlier from the same origin is replaced whole when anything
// changed and left alone otherwise, so a re-run adds nothing. Each version
// keeps the origin of its source run (the run column of runs/, by which a
// restore points it at the run it writes); runs is not needed, since the
// archive keys runs by origin too. A model without an origin or a name is
// a permanent error.
func (s *Sink) PutRegisteredModel(_ context.Context, m schema.RegisteredModel, _ map[schema.Ref]string) (map[string]int64, error) {
	if m.Origin.IsZero() || strings.Contains(m.Origin.System, ":") {
		return nil, fault.Permanent(fmt.Errorf("parquet sink: registered model %q has no usable origin (%q)", m.Name, m.Origin))
	}
	if m.Name == "" {
		return nil, fault.Permanent(fmt.Errorf("parquet sink: registered model %s has no name", m.Origin))
	}
	m.Canonicalize()
	w, err := s.writer()
	if err != nil {
		return nil, err
	}
	if _, err := w.PutModel(m); err != nil {
		return nil, fmt.Errorf("parquet sink: registered model %q: %w", m.Name, err)
	}
	cov := map[string]int64{}
	for _, v := range m.Versions {
		if _, held := w.Run(v.Run.String()); !v.Run.IsZero() && !held {
			cov[CoverageVersionNoRun]++
		}
	}
	return cov, nil
}
