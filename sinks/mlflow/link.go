package mlflow

import (
	"net/url"
	"strings"

	"github.com/runferry/runferry/sinks"
)

var _ sinks.ExperimentLinker = (*Sink)(nil)

// ExperimentURL returns the address of experiment id in MLflow's web UI:
// the tracking URI without user, query or fragment, then
// #/experiments/ID?workflowType=machine_learning. The query opens MLflow
// 3's machine-learning view (runs, metric charts), where it would open the
// GenAI view (traces) of an experiment it cannot tell the kind of; older
// servers ignore it.
func (s *Sink) ExperimentURL(id string) string {
	u, err := url.Parse(s.cfg.API.BaseURL)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	u.RawPath = ""
	return u.String() + "#/experiments/" + url.PathEscape(id) + "?workflowType=machine_learning"
}
