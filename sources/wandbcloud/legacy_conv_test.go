package wandbcloud

import (
	"fmt"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// convertRowText is the source's conversion of one row served as text.
func convertRowText(text string) ([]schema.Metric, []schema.RichValue, error) {
	v, err := decodeLenient(text)
	row, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, nil, fmt.Errorf("not an object")
	}
	step, ms := header(row)
	var points []schema.Metric
	var rich []schema.RichValue
	emitRow(row, func(key string, v any) {
		if f, ok := wandbfile.ValueFloat(v); ok {
			points = append(points, schema.Metric{Key: key, Value: f, Step: step, Time: ms})
			return
		}
		rv := schema.RichValue{Key: key, Step: step, Time: ms, Type: wandbfile.ValueKind(v), JSON: wandbfile.ValueToJSON(v)}
		if m, ok := v.(map[string]any); ok {
			if t, ok := m["_type"].(string); ok {
				rv.Type = t
			}
			rv.Files = wandbfile.MediaFiles(m)
		}
		rich = append(rich, rv)
	})
	return points, rich, nil
}
