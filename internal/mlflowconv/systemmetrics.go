package mlflowconv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// System metrics: W&B's stats keys (read by the W&B sources as
// "system/<stats key>") are written into MLflow under the names MLflow's
// own system-metrics logger (mlflow/system_metrics/metrics/*.py) gives
// series of the same meaning, converted to MLflow's unit where W&B's
// differs (bytes and GiB to MB: SystemMetric.Scale), and the others under
// a sanitised form of the W&B key that keeps the "system/" prefix and no
// other dots, so that MLflow's System metrics tab groups them with its
// own. docs/MLFLOW-MAPPING.md holds the table; a test keeps it and
// SystemRules in step. The original key of every renamed series is kept
// in the coverage file (SystemMetricKeys), so the MLflow source gives back
// the W&B keys; a converted series is written as a series runferry
// derived (GeneratedMetrics, ConvertedMetrics), its W&B points kept
// exactly in FoldedMetricsPath.

// SystemPrefix begins every system metric key, in W&B's sources and in
// MLflow.
const SystemPrefix = "system/"

// CPUMeanKey is the series per-core CPU utilisation is folded into: the
// mean over the cores at each sample, MLflow's cpu_utilization_percentage
// (psutil.cpu_percent(), the mean over the cores).
const CPUMeanKey = SystemPrefix + "cpu_utilization_percentage"

// SystemRule is one row of the mapping: a W&B stats key pattern, where N
// stands for a device index and MOUNT for a disk's mount path, and the
// MLflow key it becomes (under "system/"). Native says the MLflow key is
// one MLflow's own logger writes, with the same meaning and unit (after
// Scale). Scale, when not 0, converts W&B's values to MLflow's unit.
type SystemRule struct {
	WandB, MLflow string
	Native        bool
	Scale         float64
	Meaning       string
	// Example is a W&B key the rule applies to, and ExampleMLflow the key
	// it becomes (both without "system/").
	Example, ExampleMLflow string
}

// SystemRules is the mapping, in the order it is tried; a key no rule
// matches is sanitised (GenericSystemRule).
var SystemRules = []SystemRule{
	{"cpu.N.cpu_percent", "cpu_utilization_percentage", true, 0, "mean over the cores of each core's utilisation, %; the per-core series are folded (per-core-cpu=true keeps them as cpu_core_NNN_utilization_percentage)", "cpu.12.cpu_percent", "cpu_utilization_percentage"},
	{"memory_percent", "system_memory_usage_percentage", true, 0, "system memory in use, % (wandb-core)", "memory_percent", "system_memory_usage_percentage"},
	{"memory", "system_memory_usage_percentage", true, 0, "system memory in use, % (SDKs before wandb-core)", "memory", "system_memory_usage_percentage"},
	{"disk", "disk_usage_percentage", true, 0, "usage of the root file system, % (older SDKs)", "disk", "disk_usage_percentage"},
	{"disk./.usagePercent", "disk_usage_percentage", true, 0, "usage of the root file system, %", "disk./.usagePercent", "disk_usage_percentage"},
	{"disk.\\.usagePercent", "disk_usage_percentage", true, 0, "usage of the root file system (Windows), %", "disk.\\.usagePercent", "disk_usage_percentage"},
	{"disk./.usageGB", "disk_usage_megabytes", true, bytesPerGiB / 1e6, "root file system used: W&B's GiB × 1073.741824 = MB (10⁶ bytes)", "disk./.usageGB", "disk_usage_megabytes"},
	{"disk.\\.usageGB", "disk_usage_megabytes", true, bytesPerGiB / 1e6, "root file system used (Windows): GiB × 1073.741824 = MB", "disk.\\.usageGB", "disk_usage_megabytes"},
	{"network.sent", "network_transmit_megabytes", true, 1e-6, "bytes sent since the run began, in MB (bytes × 10⁻⁶)", "network.sent", "network_transmit_megabytes"},
	{"network.recv", "network_receive_megabytes", true, 1e-6, "bytes received since the run began, in MB (bytes × 10⁻⁶)", "network.recv", "network_receive_megabytes"},
	{"cpu", "process_cpu_utilization_percentage", false, 0, "the run's process's CPU utilisation, % (W&B's cpu)", "cpu", "process_cpu_utilization_percentage"},
	{"gpu.N.gpu", "gpu_N_utilization_percentage", true, 0, "GPU utilisation, %", "gpu.0.gpu", "gpu_0_utilization_percentage"},
	{"gpu.N.memoryAllocated", "gpu_N_memory_usage_percentage", true, 0, "GPU memory allocated, % of the total", "gpu.3.memoryAllocated", "gpu_3_memory_usage_percentage"},
	{"gpu.N.memoryAllocatedBytes", "gpu_N_memory_usage_megabytes", true, 1e-6, "GPU memory allocated, in MB (bytes × 10⁻⁶)", "gpu.0.memoryAllocatedBytes", "gpu_0_memory_usage_megabytes"},
	{"gpu.N.powerWatts", "gpu_N_power_usage_watts", true, 0, "GPU power draw, W", "gpu.1.powerWatts", "gpu_1_power_usage_watts"},
	{"gpu.N.powerPercent", "gpu_N_power_usage_percentage", true, 0, "GPU power draw, % of the power limit", "gpu.0.powerPercent", "gpu_0_power_usage_percentage"},
	{"gpu.process.N.gpu", "gpu_process_N_utilization_percentage", false, 0, "as gpu.N.gpu, for the run's process", "gpu.process.0.gpu", "gpu_process_0_utilization_percentage"},
	{"gpu.process.N.memoryAllocated", "gpu_process_N_memory_usage_percentage", false, 0, "as gpu.N.memoryAllocated, for the run's process", "gpu.process.0.memoryAllocated", "gpu_process_0_memory_usage_percentage"},
	{"gpu.process.N.powerWatts", "gpu_process_N_power_usage_watts", false, 0, "as gpu.N.powerWatts, for the run's process", "gpu.process.0.powerWatts", "gpu_process_0_power_usage_watts"},
	{"gpu.process.N.powerPercent", "gpu_process_N_power_usage_percentage", false, 0, "as gpu.N.powerPercent, for the run's process", "gpu.process.0.powerPercent", "gpu_process_0_power_usage_percentage"},
	{"gpu.process.N.NAME", "gpu_process_N_name", false, 0, "other per-process GPU series: NAME in snake case, values as W&B logged them", "gpu.process.0.temp", "gpu_process_0_temp"},
	{"gpu.N.NAME", "gpu_N_name", false, 0, "other GPU series (temp, memory, smClock, memoryClock, ...): NAME in snake case, values as W&B logged them", "gpu.0.smClock", "gpu_0_sm_clock"},
	{"disk.MOUNT.NAME", "disk_mount_name", false, 0, "per-mount disk series (usageGB of other mounts, in, out): \"/\" and \"\\\" become root, other mounts their letters and digits joined by _, NAME in snake case, values as W&B logged them", "disk./mnt/data.usageGB", "disk_mnt_data_usage_gb"},
}

// bytesPerGiB is 2³⁰: W&B's usageGB counts GiB.
const bytesPerGiB = 1 << 30

// GenericSystemRule describes what happens to a key no rule matches.
var GenericSystemRule = SystemRule{"NAME", "name", false, 0, "any other key: each dot-separated part in snake case (camelCase split, lower case), joined by _, characters MLflow refuses as _; values as W&B logged them", "proc.memory.rssMB", "proc_memory_rss_mb"}

// SystemMetric is where one system metric series goes in MLflow.
type SystemMetric struct {
	// Key is the MLflow key of the series; for a per-core CPU series, the
	// key it has when kept (per-core-cpu=true).
	Key string
	// Core is true for a per-core CPU series, folded into CPUMeanKey.
	Core bool
	// Scale, when not 0, converts the series to MLflow's unit: MLflow
	// shows value × Scale under Key, and the W&B points are kept exactly
	// apart (see the package's System metrics).
	Scale float64
}

// SystemValue returns v, a W&B point of a series whose SystemMetric.Scale
// is scale (not 0), in MLflow's unit. Every Scale is n × 10⁻⁶ for a power
// of two n (bytes: 1; GiB: 2³⁰), so the value is computed as MLflow's
// own monitors compute theirs, bytes / 1e6: v × n is exact, and the one
// division rounds. A whole number of bytes (W&B's network counters and
// GPU memory; W&B's GiB, which it computes as bytes / 2³⁰) then shows as
// the decimal MB it is (257622 bytes: 0.257622), where v × Scale showed
// 0.25762199999999996 in MLflow's UI. NaN and ±Inf stay as they are.
func SystemValue(v, scale float64) float64 {
	if scale == 0 {
		return v
	}
	return v * math.Round(scale*1e6) / 1e6
}

// SystemMetricKey maps a system metric key ("system/<W&B stats key>") to
// its MLflow form. Keys without the prefix are not system metrics: ok is
// false. Keys that are already clean (MLflow's own names) stay as they
// are. The result always begins with "system/" and is a valid MLflow key.
func SystemMetricKey(key string) (m SystemMetric, ok bool) {
	rest, ok := strings.CutPrefix(key, SystemPrefix)
	if !ok || rest == "" {
		return SystemMetric{}, false
	}
	if n, ok := index(rest, "cpu.", ".cpu_percent"); ok {
		return SystemMetric{Key: fmt.Sprintf("%scpu_core_%03d_utilization_percentage", SystemPrefix, n), Core: true}, true
	}
	name, scale := mapSystem(rest)
	return SystemMetric{Key: validSystemKey(key, name), Scale: scale}, true
}

// mapSystem applies SystemRules (less the per-core rule) to a W&B key,
// giving the MLflow name and the Scale to MLflow's unit (0: none).
func mapSystem(k string) (string, float64) {
	switch k {
	case "memory_percent", "memory":
		return "system_memory_usage_percentage", 0
	case "disk", "disk./.usagePercent", "disk.\\.usagePercent":
		return "disk_usage_percentage", 0
	case "disk./.usageGB", "disk.\\.usageGB":
		return "disk_usage_megabytes", bytesPerGiB / 1e6
	case "network.sent":
		return "network_transmit_megabytes", 1e-6
	case "network.recv":
		return "network_receive_megabytes", 1e-6
	case "cpu":
		return "process_cpu_utilization_percentage", 0
	}
	for _, dev := range []struct{ prefix, name string }{{"gpu.process.", "gpu_process_"}, {"gpu.", "gpu_"}} {
		rest, ok := strings.CutPrefix(k, dev.prefix)
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || name == "" || strconv.Itoa(n) != num {
			continue
		}
		base := dev.name + num + "_"
		switch name {
		case "gpu":
			return base + "utilization_percentage", 0
		case "memoryAllocated":
			return base + "memory_usage_percentage", 0
		case "powerWatts":
			return base + "power_usage_watts", 0
		case "powerPercent":
			return base + "power_usage_percentage", 0
		case "memoryAllocatedBytes":
			if dev.prefix == "gpu." {
				return base + "memory_usage_megabytes", 1e-6
			}
		}
		return base + snake(name), 0
	}
	if rest, ok := strings.CutPrefix(k, "disk."); ok {
		if i := strings.LastIndexByte(rest, '.'); i > 0 {
			return "disk_" + mountName(rest[:i]) + "_" + snake(rest[i+1:]), 0
		}
	}
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = snake(p)
	}
	return strings.Join(parts, "_"), 0
}

// index parses keys of the form prefix + N + suffix.
func index(k, prefix, suffix string) (int, bool) {
	rest, ok := strings.CutPrefix(k, prefix)
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, suffix)
	n, err := strconv.Atoi(num)
	return n, ok && err == nil && n >= 0 && strconv.Itoa(n) == num
}

// mountName names a disk mount in a key: "root" for "/" and "\", else its
// letters and digits, other runs of characters as one "_".
func mountName(m string) string {
	s := strings.Trim(sanitize(strings.ToLower(m), false), "_")
	if s == "" {
		return "root"
	}
	return s
}

// snake writes a camelCase name in snake case, lower case, with characters
// MLflow refuses or that would split a section ("/", ".") as "_":
// usageGB -> usage_gb, memoryAllocatedBytes -> memory_allocated_bytes.
func snake(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	out := sanitize(b.String(), true)
	if out == "" {
		return "_"
	}
	return out
}

// sanitize replaces characters other than letters, digits, '_' and '-'
// (and '/' when keepSlash) by '_', runs of them by one.
func sanitize(s string, keepSlash bool) string {
	var b strings.Builder
	under := false
	for _, r := range s {
		ok := r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || keepSlash && r == '/'
		if !ok {
			if !under {
				b.WriteByte('_')
			}
			under = true
			continue
		}
		under = r == '_'
		b.WriteRune(r)
	}
	return b.String()
}

// validSystemKey returns "system/"+rest when MLflow accepts it, else a
// valid key under "system/" made of rest's allowed characters and 8 hex
// digits of a hash of the original key.
func validSystemKey(orig, rest string) string {
	k := SystemPrefix + rest
	if ValidKey(k) {
		return k
	}
	s := strings.Trim(strings.ReplaceAll(rest, "/", "_"), "_")
	if n := mlflowapi.MaxKeyLength - utf8.RuneCountInString(SystemPrefix) - 9; utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	sum := sha256.Sum256([]byte(orig))
	return SystemPrefix + s + "_" + hex.EncodeToString(sum[:4])
}

// SystemRulesTable renders SystemRules and GenericSystemRule as the
// Markdown table docs/MLFLOW-MAPPING.md holds.
func SystemRulesTable() string {
	var b strings.Builder
	b.WriteString("| W&B stats key | MLflow key | MLflow's own name | meaning | example |\n|---|---|---|---|---|\n")
	for _, r := range append(SystemRules, GenericSystemRule) {
		native := "no"
		if r.Native {
			native = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | `system/%s` | %s | %s | `%s` → `system/%s` |\n", r.WandB, r.MLflow, native, r.Meaning, r.Example, r.ExampleMLflow)
	}
	return b.String()
}
