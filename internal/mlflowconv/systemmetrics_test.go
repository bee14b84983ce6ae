package mlflowconv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

func TestSystemMetricKey(t *testing.T) {
	cases := map[string]string{
		// MLflow's own names, where W&B's series means the same.
		"system/gpu.0.gpu":             "system/gpu_0_utilization_percentage",
		"system/gpu.12.gpu":            "system/gpu_12_utilization_percentage",
		"system/gpu.0.memoryAllocated": "system/gpu_0_memory_usage_percentage",
		"system/gpu.3.powerWatts":      "system/gpu_3_power_usage_watts",
		"system/gpu.0.powerPercent":    "system/gpu_0_power_usage_percentage",
		"system/memory":                "system/system_memory_usage_percentage",
		"system/memory_percent":        "system/system_memory_usage_percentage",
		"system/disk":                  "system/disk_usage_percentage",
		"system/disk./.usagePercent":   "system/disk_usage_percentage",
		"system/disk.\\.usagePercent":  "system/disk_usage_percentage",
		"system/cpu":                   "system/process_cpu_utilization_percentage",
		// Sanitised, the prefix kept, no other dot.
		"system/disk./mnt/data.usageGB":             "system/disk_mnt_data_usage_gb",
		"system/disk.sda1.in":                       "system/disk_sda1_in",
		"system/disk.in":                            "system/disk_in",
		"system/gpu.0.temp":                         "system/gpu_0_temp",
		"system/gpu.0.memory":                       "system/gpu_0_memory",
		"system/gpu.process.0.memoryAllocatedBytes": "system/gpu_process_0_memory_allocated_bytes",
		"system/gpu.0.enforcedPowerLimitWatts":      "system/gpu_0_enforced_power_limit_watts",
		"system/gpu.process.0.gpu":                  "system/gpu_process_0_utilization_percentage",
		"system/gpu.process.0.temp":                 "system/gpu_process_0_temp",
		"system/proc.memory.rssMB":                  "system/proc_memory_rss_mb",
		"system/proc.memory.availableMB":            "system/proc_memory_available_mb",
		"system/proc.cpu.threads":                   "system/proc_cpu_threads",
		"system/network.total":                      "system/network_total",
		"system/gpu.x.gpu":                          "system/gpu_x_gpu",
		// Already MLflow's: unchanged.
		"system/cpu_utilization_percentage":        "system/cpu_utilization_percentage",
		"system/node_0/cpu_utilization_percentage": "system/node_0/cpu_utilization_percentage",
		// Never a key outside system/, never a fake section.
		"system/a+b":                         "system/a_b",
		"system/x.//.y":                      "system/x____y_" + hash8("system/x.//.y"),
		"system/" + strings.Repeat("a", 300): "system/" + strings.Repeat("a", 234) + "_" + hash8("system/"+strings.Repeat("a", 300)),
	}
	for in, want := range cases {
		got, ok := SystemMetricKey(in)
		if !ok || got.Key != want || got.Core || got.Scale != 0 {
			t.Errorf("SystemMetricKey(%q) = %+v, %v; want %q", in, got, ok, want)
		}
		if !ValidKey(got.Key) || !strings.HasPrefix(got.Key, SystemPrefix) {
			t.Errorf("SystemMetricKey(%q) = %q: not a valid key under system/", in, got.Key)
		}
	}
	for in, want := range map[string]string{
		"system/cpu.0.cpu_percent":   "system/cpu_core_000_utilization_percentage",
		"system/cpu.255.cpu_percent": "system/cpu_core_255_utilization_percentage",
	} {
		if got, ok := SystemMetricKey(in); !ok || got.Key != want || !got.Core {
			t.Errorf("SystemMetricKey(%q) = %+v; want the per-core series %q", in, got, want)
		}
	}
	// Converted to MLflow's unit: bytes and GiB to MB.
	for in, want := range map[string]SystemMetric{
		"system/network.sent":               {Key: "system/network_transmit_megabytes", Scale: 1e-6},
		"system/network.recv":               {Key: "system/network_receive_megabytes", Scale: 1e-6},
		"system/disk./.usageGB":             {Key: "system/disk_usage_megabytes", Scale: 1073.741824},
		"system/disk.\\.usageGB":            {Key: "system/disk_usage_megabytes", Scale: 1073.741824},
		"system/gpu.0.memoryAllocatedBytes": {Key: "system/gpu_0_memory_usage_megabytes", Scale: 1e-6},
	} {
		if got, ok := SystemMetricKey(in); !ok || got != want {
			t.Errorf("SystemMetricKey(%q) = %+v; want %+v", in, got, want)
		}
	}
	for _, in := range []string{"train/loss", "system", "system/", "systemx/gpu.0.gpu"} {
		if got, ok := SystemMetricKey(in); ok {
			t.Errorf("SystemMetricKey(%q) = %+v: not a system metric", in, got)
		}
	}
}

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// TestSystemMappingDoc keeps docs/MLFLOW-MAPPING.md's table and
// SystemRules in step: the table is their rendering, and every example in
// it maps as it says.
func TestSystemMappingDoc(t *testing.T) {
	for _, r := range append(SystemRules, GenericSystemRule) {
		got, ok := SystemMetricKey(SystemPrefix + r.Example)
		want := SystemPrefix + r.ExampleMLflow
		if got.Core {
			got.Key = CPUMeanKey
		}
		if !ok || got.Key != want {
			t.Errorf("rule %s: example %s maps to %q, the table says %q", r.WandB, r.Example, got.Key, want)
		}
	}
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "MLFLOW-MAPPING.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- system-metrics-table -->\n", "<!-- /system-metrics-table -->"
	_, rest, ok := strings.Cut(string(doc), begin)
	table, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("docs/MLFLOW-MAPPING.md: no table between %q and %q", begin, end)
	}
	if want := SystemRulesTable(); table != want {
		t.Errorf("docs/MLFLOW-MAPPING.md's system-metrics table differs from SystemRules; it should read:\n%s", want)
	}
}

// decimalMB writes a whole number of bytes as MB by moving the decimal
// point, without floating point: 257622 gives "0.257622".
func decimalMB(bytes uint64) string {
	s := fmt.Sprintf("%07d", bytes)
	return s[:len(s)-6] + "." + s[len(s)-6:]
}

// TestSystemValueIsDecimalMB: a whole number of bytes arrives as the double
// nearest its decimal MB, as MLflow's monitors' bytes / 1e6 gives it, and
// W&B's GiB (bytes / 2³⁰) alike; v × 1e-6 gave 0.25762199999999996 for
// 257622 bytes (the Tarun sample's network.sent, seen in MLflow's UI). Every
// rule's Scale is n × 10⁻⁶ for a power of two n, which SystemValue relies on.
// Failed before SystemValue (the sink multiplied by Scale).
func TestSystemValueIsDecimalMB(t *testing.T) {
	for _, r := range SystemRules {
		if r.Scale == 0 {
			continue
		}
		n := math.Round(r.Scale * 1e6)
		if _, exp := math.Frexp(n); n != math.Ldexp(0.5, exp) || math.Abs(r.Scale*1e6-n) > 1e-6 {
			t.Errorf("rule %s: Scale %v is not 10⁻⁶ × a power of two", r.WandB, r.Scale)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := []uint64{0, 1, 999999, 1000000, 257622, 128418, 46121, 48188, 43755, 1 << 40}
	for range 20000 {
		counts = append(counts, rng.Uint64N(1<<50))
	}
	for _, b := range counts {
		want, err := strconv.ParseFloat(decimalMB(b), 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := SystemValue(float64(b), 1e-6); got != want {
			t.Fatalf("%d bytes: %v MB, want %s", b, got, decimalMB(b))
		}
		if got := SystemValue(float64(b)/bytesPerGiB, bytesPerGiB/1e6); got != want {
			t.Fatalf("%d bytes as GiB (%v): %v MB, want %s", b, float64(b)/bytesPerGiB, got, decimalMB(b))
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := SystemValue(v, 1e-6); !(math.IsNaN(v) && math.IsNaN(got)) && got != v {
			t.Errorf("SystemValue(%v) = %v", v, got)
		}
	}
}
