package mlflowapi

import (
	"context"
	"iter"
	"net/url"
	"strconv"
)

const api = "/api/2.0/mlflow/"

// Ping proves the server is reachable and the credentials are good, with
// the cheapest authenticated call (a one-experiment search).
func (c *Client) Ping(ctx context.Context) error {
	var out struct{}
	return c.post(ctx, idempotent, api+"experiments/search", SearchExperiments{MaxResults: 1}, &out)
}

// GetExperimentByName returns the experiment named name, active or deleted;
// the error satisfies IsNotFound when there is none.
func (c *Client) GetExperimentByName(ctx context.Context, name string) (Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := c.get(ctx, api+"experiments/get-by-name", url.Values{"experiment_name": {name}}, &out)
	return out.Experiment, err
}

// GetExperiment returns the experiment with the given id.
func (c *Client) GetExperiment(ctx context.Context, id string) (Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := c.get(ctx, api+"experiments/get", url.Values{"experiment_id": {id}}, &out)
	return out.Experiment, err
}

// CreateExperiment creates an experiment with the server's default artifact
// location and returns its id. Names are unique across active and deleted
// experiments: a clash is an error satisfying IsCode(err,
// CodeAlreadyExists). It is retried like a read: a repeat cannot duplicate.
func (c *Client) CreateExperiment(ctx context.Context, name string, tags []Tag) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	err := c.post(ctx, idempotent, api+"experiments/create", map[string]any{"name": name, "tags": tags}, &out)
	return out.ID, err
}

// SetExperimentTag sets (overwrites) one experiment tag.
func (c *Client) SetExperimentTag(ctx context.Context, id, key, value string) error {
	return c.post(ctx, idempotent, api+"experiments/set-experiment-tag",
		map[string]string{"experiment_id": id, "key": key, "value": value}, nil)
}

// DeleteExperimentTag removes an experiment's tag (MLflow 2.20 and later;
// older servers answer 404). A tag already gone is not an error.
func (c *Client) DeleteExperimentTag(ctx context.Context, id, key string) error {
	err := c.post(ctx, idempotent, api+"experiments/delete-experiment-tag",
		map[string]string{"experiment_id": id, "key": key}, nil)
	if IsCode(err, CodeDoesNotExist) {
		return nil
	}
	return err
}

// DeleteExperiment marks an experiment deleted; MLflow marks its runs
// deleted with it and refuses to create runs in it until it is restored.
func (c *Client) DeleteExperiment(ctx context.Context, id string) error {
	return c.post(ctx, idempotent, api+"experiments/delete", map[string]string{"experiment_id": id}, nil)
}

// RestoreExperiment makes a deleted experiment active again; MLflow makes
// all of its runs active with it, those deleted on their own included.
func (c *Client) RestoreExperiment(ctx context.Context, id string) error {
	return c.post(ctx, idempotent, api+"experiments/restore", map[string]string{"experiment_id": id}, nil)
}

// SearchExperiments yields every experiment matching filter (MLflow search
// syntax, "" for all) in view ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"),
// ordered by id. Paging is offset-based on the server, so experiments are
// de-duplicated by id.
func (c *Client) SearchExperiments(ctx context.Context, filter, view string) iter.Seq2[Experiment, error] {
	return func(yield func(Experiment, error) bool) {
		seen := map[string]bool{}
		req := SearchExperiments{MaxResults: SearchPageSize, Filter: filter, ViewType: view,
			OrderBy: []string{"experiment_id ASC"}}
		for {
			var out struct {
				Experiments []Experiment `json:"experiments"`
				Next        string       `json:"next_page_token"`
			}
			if err := c.post(ctx, idempotent, api+"experiments/search", req, &out); err != nil {
				yield(Experiment{}, err)
				return
			}
			for _, e := range out.Experiments {
				if seen[e.ExperimentID] {
					continue
				}
				seen[e.ExperimentID] = true
				if !yield(e, nil) {
					return
				}
			}
			if out.Next == "" || len(out.Experiments) == 0 {
				return
			}
			req.PageToken = out.Next
		}
	}
}

// CreateRun creates a run (status RUNNING) and returns it. It is never
// resent once the server may have applied it: after an ambiguous failure a
// run may exist that the caller must find by its tags.
func (c *Client) CreateRun(ctx context.Context, r CreateRun) (Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	err := c.post(ctx, applyOnce, api+"runs/create", r, &out)
	return out.Run, err
}

// UpdateRun sets a run's status, end time or name.
func (c *Client) UpdateRun(ctx context.Context, u UpdateRun) error {
	return c.post(ctx, idempotent, api+"runs/update", u, nil)
}

// GetRun returns a run with its params, tags and latest metrics.
func (c *Client) GetRun(ctx context.Context, runID string) (Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	err := c.get(ctx, api+"runs/get", url.Values{"run_id": {runID}}, &out)
	return out.Run, err
}

// DeleteRun marks a run deleted; RestoreRun makes it active again. Writes
// to a deleted run are refused by the server.
func (c *Client) DeleteRun(ctx context.Context, runID string) error {
	return c.post(ctx, idempotent, api+"runs/delete", map[string]string{"run_id": runID}, nil)
}

// RestoreRun makes a deleted run active again.
func (c *Client) RestoreRun(ctx context.Context, runID string) error {
	return c.post(ctx, idempotent, api+"runs/restore", map[string]string{"run_id": runID}, nil)
}

// SetTag sets (overwrites) one run tag.
func (c *Client) SetTag(ctx context.Context, runID, key, value string) error {
	return raceRetry(func() error {
		return c.post(ctx, idempotent, api+"runs/set-tag", map[string]string{"run_id": runID, "key": key, "value": value}, nil)
	})
}

// DeleteTag removes one run tag; a tag the run does not have is no error,
// so that a repeated call succeeds.
func (c *Client) DeleteTag(ctx context.Context, runID, key string) error {
	err := c.post(ctx, idempotent, api+"runs/delete-tag", map[string]string{"run_id": runID, "key": key}, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// raceRetry repeats an idempotent write that lost a race (IsWriteRace): the
// key the other writer inserted is there now, and the repeat updates it.
func raceRetry(write func() error) error {
	err := write()
	for i := 0; i < 2 && IsWriteRace(err); i++ {
		err = write()
	}
	return err
}

// LogBatch writes metrics, params and tags. Batches holding metrics are
// never resent once the server may have applied them (metrics append);
// batches of params and tags only are idempotent and retried. The caller
// keeps within the server limits (see MaxMetricsPerBatch and friends).
func (c *Client) LogBatch(ctx context.Context, b LogBatch) error {
	if len(b.Metrics) > 0 {
		return c.post(ctx, applyOnce, api+"runs/log-batch", b, nil)
	}
	return raceRetry(func() error { return c.post(ctx, idempotent, api+"runs/log-batch", b, nil) })
}

// SearchRuns yields the runs of experiments matching filter in view,
// ordered by start time then run id, de-duplicated across pages (the
// server's page tokens are offsets). Pages are of RunSearchPageSize runs,
// the server's maximum: the server's cost per page grows with its offset,
// so fewer, larger pages list a big experiment faster; a page is held in
// memory while it is decoded (a few KB a run). At most 100 experiment ids
// per call.
func (c *Client) SearchRuns(ctx context.Context, experimentIDs []string, filter, view string) iter.Seq2[Run, error] {
	return func(yield func(Run, error) bool) {
		seen := map[string]bool{}
		req := SearchRuns{ExperimentIDs: experimentIDs, Filter: filter, RunViewType: view,
			MaxResults: RunSearchPageSize, OrderBy: []string{"attributes.start_time ASC"}}
		for {
			var out struct {
				Runs []Run  `json:"runs"`
				Next string `json:"next_page_token"`
			}
			if err := c.post(ctx, idempotent, api+"runs/search", req, &out); err != nil {
				yield(Run{}, err)
				return
			}
			for _, r := range out.Runs {
				if seen[r.Info.RunID] {
					continue
				}
				seen[r.Info.RunID] = true
				if !yield(r, nil) {
					return
				}
			}
			if out.Next == "" || len(out.Runs) == 0 {
				return
			}
			req.PageToken = out.Next
		}
	}
}

// MetricHistory yields the full history of one metric key in pages of up to
// HistoryPageSize points, in the server's order (timestamp, step, value).
// max_results is always sent: servers from 3.1 to about 3.13 otherwise
// return nothing with a page token that never advances.
func (c *Client) MetricHistory(ctx context.Context, runID, key string) iter.Seq2[[]Metric, error] {
	return func(yield func([]Metric, error) bool) {
		q := url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {strconv.Itoa(HistoryPageSize)}}
		for {
			var out struct {
				Metrics []Metric `json:"metrics"`
				Next    string   `json:"next_page_token"`
			}
			if err := c.get(ctx, api+"metrics/get-history", q, &out); err != nil {
				yield(nil, err)
				return
			}
			if len(out.Metrics) > 0 && !yield(out.Metrics, nil) {
				return
			}
			if out.Next == "" || len(out.Metrics) == 0 || out.Next == q.Get("page_token") {
				return
			}
			q.Set("page_token", out.Next)
		}
	}
}
