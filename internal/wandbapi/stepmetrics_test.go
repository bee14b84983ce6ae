package wandbapi_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/wandbapi"
)

// TestStepMetrics reads define_metric's x axes from the config the API
// gives, in the form W&B keeps them (config _wandb.m, proto field
// numbers; the first case is a real run's, from the shared samples'
// NiyonshutiDavid__uruti_MLOP config.yaml).
func TestStepMetrics(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   map[string]string
	}{
		{`{"lr":{"value":0.1},"_wandb":{"desc":null,"value":{"cli_version":"0.21.0","m":[{"1":"train/global_step","6":[3],"7":[]},{"2":"*","5":1,"6":[1],"7":[]}]}}}`,
			map[string]string{"*": "train/global_step"}},
		{`{"_wandb":{"value":{"m":[{"1":"epoch","6":[3]},{"1":"val/acc","5":1},{"2":"val/*","5":1},{"1":"loss","4":"step"},{"1":"acc"}]}}}`,
			map[string]string{"val/acc": "epoch", "val/*": "epoch", "loss": "step"}},
		{`{"lr":{"value":0.1}}`, nil},
		{`{"_wandb":{"value":{"cli_version":"0.15.0"}}}`, nil},
		{``, nil},
	} {
		got, err := wandbapi.StepMetrics(tc.config)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.config, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{"_wandb":{"value":{"m":[{"1":"loss","5":3}]}}}`, `{"_wandb":{"value":{"m":{"1":"x"}}}}`, `[`} {
		if _, err := wandbapi.StepMetrics(bad); err == nil || !strings.Contains(err.Error(), "config") {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}
