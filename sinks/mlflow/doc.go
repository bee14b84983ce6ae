// Package mlflow is the sink that writes runs into an MLflow tracking
// server through its REST API (internal/mlflowapi).
//
// # Location
//
//	mlflow+http://HOST[:PORT][/PATH][?experiment-prefix=P&max-in-flight=N&per-core-cpu=true]
//	mlflow+https://...
//
// Credentials and TLS come from MLflow's own environment variables
// (MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD,
// MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH,
// MLFLOW_TRACKING_CLIENT_CERT_PATH); the non-secret ones may also be given
// in the location (?username=, ?insecure-tls=, ?server-cert=,
// ?client-cert=, or the user as USER@HOST), which wins. Secrets (token,
// password) come only from the environment: a location holding one is
// refused. TLS is verified by default. The server must serve artifacts (--serve-artifacts, the
// default) and allow the Host header the client sends (--allowed-hosts).
//
// # Mapping
//
// Experiments are matched by name (experiment-prefix + name): found, or
// created with the server's default artifact location. runferry tags them
// runferry.origin (the one tag shown) and, hidden under mlflow.runferry.,
// managed, prefix and name (a
// second source experiment of the same name shares the experiment and its
// origin stays the first one's, unless that is the new
// experiment's former origin, which it then replaces); the
// description goes to mlflow.note.content, tags to tags (values cut to 5000
// characters). A source experiment marked deleted ends deleted (MLflow's
// lifecycle stage, which also marks its runs deleted): it is restored only
// while runs are being written into it, and deleted again when the last of
// them commits or aborts (a job killed in between leaves it active, and
// the next job deletes it). Creation time is the server's; the source's is
// kept in mlflow.runferry.created_at.
//
// MLflow's UI hides tags under "mlflow." from the Tags box, tag columns and
// group-by menu; runferry's bookkeeping lives there (mlflow.runferry.*),
// still searchable. Versions before 11 wrote it under "runferry."; the sink
// searches and reads both names, so their copies are found and never
// duplicated (docs/MLFLOW-MAPPING.md lists every tag).
//
// A run becomes one MLflow run:
//
//	Origin             tags runferry.origin and mlflow.runferry.origin_key (a hash, searched for)
//	Name               run_name (cut to 250 characters; an empty name gets the server's random one)
//	User               user_id and tag mlflow.user
//	Start, End, Status runs/create start_time; runs/update status and end_time at commit
//	Params             params (values cut to 6000 characters)
//	Config             flattened into params with dots (arrays and empty objects as JSON);
//	                   keys an explicit param has, keys MLflow rejects and values over 6000
//	                   characters are not params; the whole config is in config.json
//	Tags               tags (values cut to 8000 characters)
//	Notes              mlflow.note.content
//	Parent             mlflow.parentRunId (the new id), mlflow.runferry.parent, mlflow.runferry.parent_key
//	GitCommit          mlflow.source.git.commit
//	GitRemote          mlflow.source.git.repoURL
//	Program            mlflow.source.name, with mlflow.source.type LOCAL (as MLflow's client
//	                   sets it; the UI's source icon) unless the run's tags hold one
//	Group, JobType     wandb.group, wandb.job_type
//	Host               wandb.host (the CLI leaves it out unless --keep-personal)
//	Labels             one tag wandb.tag.NAME = "true" each (MapKey for bad names); run.json
//	                   version 1 also wrote wandb.tags (a JSON array)
//	wandb.* tags       entity, project, run_id, sweep_id, url as tags; the others (os,
//	                   python, sdk_version, exit_code, ...) as one JSON tag wandb.details
//	Summary            whole in runferry/run.json; shown as MLflow shows values (see
//	                   W&B runs below): numbers as metric points, strings as tags
//	Damage             only in runferry/run.json
//	Deleted            the run is deleted (runs/delete) after everything else
//	Inputs             dataset inputs (runs/log-inputs: name, digest, source type, source,
//	                   schema, profile, input tags); one over MLflow's limits is left out,
//	                   named in the coverage file and whole in runferry/run.json
//	metrics            log-batch, 1000 points a request (under 1 MB); NaN as "NaN";
//	                   system metrics ("system/<W&B key>") under MLflow's own names or
//	                   sanitised under system/ (docs/MLFLOW-MAPPING.md; originals in the
//	                   coverage file); bytes and GiB shown in MLflow's MB, W&B's points
//	                   kept exactly in runferry/folded_metrics.jsonl; W&B's per-core CPU
//	                   series folded into their mean,
//	                   system/cpu_utilization_percentage, the points kept exactly in
//	                   runferry/folded_metrics.jsonl (per-core-cpu=true also writes them)
//	console output     runferry/logs.jsonl (exact: time, stream, line) and output.log
//	                   (plain text; not written when the source has its own output.log);
//	                   beyond 8 MiB in segments: runferry/logs.1.jsonl, ... and
//	                   output.1.log, ..., each closed at the first line boundary at or
//	                   beyond 8 MiB (boundaries fixed by the lines before them), listed
//	                   in the coverage file (log_segments); see console.go. The
//	                   source's own output.log, beyond 8 MiB, in segments alike
//	                   (output.log, output.1.log, ...; output_segments; see outputlog.go)
//	rich values        runferry/rich_values.jsonl; the media files they name are the
//	                   source's files and are copied as files
//	images, tables     W&B "image-file" values also as MLflow step images (images/<key>+
//	                   step+<step>+timestamp+<ms>+<id>.png and a +compressed.png thumbnail,
//	                   tag mlflow.loggedImages=True: the UI's image grid with a step
//	                   slider); "table-file" values as log_table JSON under
//	                   tables/<key>/step_<step>.json, listed in mlflow.loggedArtifacts.
//	                   These are generated files (hidden from the MLflow source, as are
//	                   the two tags); media that cannot be shown so are counted
//	                   (media_not_shown). Histograms and other values stay in the sidecar
//	files              artifacts, streamed, size checked; a source path under runferry/
//	                   goes under runferry/files/, as does one named as a later
//	                   console segment (output.1.log, ...); files the source could not read are
//	                   listed with their problem in the coverage file; a source's MLflow
//	                   logged models (files under mlflow-logged-models/<id>/) are
//	                   re-created as logged models (see Logged models)
//
// # W&B runs in MLflow's UI
//
// What W&B shows from a run's summary and define_metric, MLflow shows from
// metrics and tags, so the sink presents them so (package mlflowconv holds
// the rules), and records what it derived in runferry/coverage.json so the
// source reads back the run as given:
//
//   - Summary values (mlflowconv.SummaryValues: nested keys joined with
//     "/", W&B's own "_" keys left out): each number (booleans as 0 and 1)
//     that the metric's history does not already end with is written as
//     one point at the run's last step (the greatest history step, or the
//     summary's _step if greater) and last time (the latest point's, or
//     the run's end if later), listed in summary_points; each string as the
//     tag wandb.summary.KEY. Lists, media and nulls stay in run.json.
//   - define_metric (the W&B sources' tags wandb.step_metric.NAME = AXIS,
//     NAME a metric or a glob such as val/*) is written as one tag,
//     wandb.step_metric, a JSON object {"NAME":"AXIS",...}. A metric whose
//     step metric is a non-decreasing integer series (at most 4 Mi points)
//     holding a value at each of the metric's steps, one value per step
//     and no value for two steps, is written with that value as its MLflow
//     step, as W&B plots it; the map back to the W&B steps is in rebased
//     (runs of arithmetic progressions, 100 000 at most per run). Such
//     metrics' points are held in a temporary file until commit. Other
//     metrics keep W&B's _step. The summary point of a rebased metric, or
//     of a summary-only metric whose step metric other metrics were
//     rebased against, sits at the step metric's last value. The tag
//     leaves out the per-metric definitions W&B expands a glob into.
//
// Tags derived from fields are written only when the run has no user tag of
// the same key. Keys MLflow rejects (characters outside letters, digits and
// "_/.- :", over 250 characters, bad slashes, or the reserved "runferry."
// prefix) are mapped to a valid key plus a hash (mlflowconv.MapKey).
//
// # What MLflow cannot hold, and where it goes instead
//
// runferry/run.json holds the schema.Run exactly as the sink was given it;
// the MLflow source restores the run's metadata from it and reads params,
// tags, status and times natively, noting any disagreement in Run.Damage.
// runferry/coverage.json, written at commit, lists mapped keys, truncated
// values, config keys not written as params, generated files, counts, and
// fixups: SQL stores keep ±Inf as ±MaxFloat64 (so does mlflow.log_metric:
// the REST API then returns ±1.7976931348623157e308, and NaN as "NaN"), -0 as 0, refuse negative
// timestamps (sent as 0), and collapse exact duplicate points (sent once);
// each such point is recorded with the source points it stands for, and
// the source restores them. Past 100 000 fixups per run the rest are only
// counted (fixups_dropped). Nothing is dropped silently.
//
// # Logged models
//
// A source's MLflow 3 logged models come as files of the run that logged
// them: each model's files under mlflow-logged-models/<model id>/ and its
// metadata there as logged_model.json (the MLflow source and the archive
// both present them so). On a server with logged models (probed once with
// logged-models/search; MLflow 3 and later) each becomes a logged model of
// the run's experiment (logged-models create): its name, type, params and
// tags, the destination run as its source run, and tags runferry.origin
// (the run's origin and "#logged-model/<source id>"), runferry.origin_key
// and runferry.source_model (JSON: the source's model id, experiment,
// artifact root, run and creation time, which MLflow assigns itself, and
// any metric points of the model that another run logged). Its files go to
// its own artifact root through the mlflow-artifacts proxy (files that
// sort before logged_model.json wait in temporary files until the model
// exists). At commit the metric points the model's run logged are linked
// (log-batch with the model id; points the run holds already are not
// doubled), the model is recorded as an output of the run (runs/outputs,
// step 0), and it is finalized with the source's state (READY or
// UPLOAD_FAILED; a PENDING one stays PENDING). Before creating a model,
// the models of the same origin in the experiment (left by an earlier copy
// or an interrupted one, whose run was superseded) are deleted, so the
// experiment shows one. Counted as coverage: the new ids, and points of
// other runs not linked. The MLflow source, reading a run runferry wrote,
// presents such a model under the source's id with the source's identity
// fields and this server's name, type, state, params, tags, metrics and
// files, so that check compares what the destination shows. On a server
// without logged models the files stay files of the run (counted).
//
// # Identity and resume
//
// Every run carries runferry.origin from creation; mlflow.runferry.fingerprint,
// mlflow.runferry.mark (the engine's token for the points committed,
// sinks.Marked) and then mlflow.runferry.complete are written last at commit (complete is "deleted"
// for a run deleted right after, so a crash in between reads as
// incomplete). FindRun searches runferry's experiments of this prefix for
// the origin key; when none carries it, for the keys of the origin's former
// origins (sinks.FormerOriginsSetter: what earlier versions called the same
// run, such as mlflow:ID before MLflow origins named the server), reported
// as RunUnderFormerOrigin so that the engine writes the run again, and
// OpenRun supersedes the former-origin copies with the earlier attempts.
//
// Resume continues a first copy cut short in place (firstCopyCutShort):
// when the one run the server holds of the origin was never committed (no
// complete tag, no mark, no appending tag), is active in the experiment
// written to, holds a run.json identical to the run's now (so every param
// is logged again with the value it holds; a copy cut short before its
// run.json was uploaded is continued when it holds nothing but the tags
// CreateRun gave it, for the same start time, name and user) and no logged
// model, OpenRun opens it under its run id. It reads the whole history of
// every key the copy holds, and the writer sends no point held already
// (log-batch is not idempotent: a batch partly applied is found there
// too), writes params, tags and dataset inputs again (the server keeps one
// of each) and uploads files over those held; at commit it deletes the
// files the copy holds that the source no longer has (outside runferry/,
// whose files it writes anew), and the writer reports the run continued
// with the points not sent again (sinks.ContinueReporter). If at commit the copy holds
// points the run no longer has (the source changed between the attempts:
// MLflow cannot remove points), the copy is superseded and the commit
// fails with a retryable error, so the next attempt writes the run anew.
// Anywhere else resume is "delete and redo": OpenRun supersedes every
// earlier run of the origin, complete or not (tag mlflow.runferry.superseded,
// then runs/delete), and writes a fresh run, which holds exactly what the
// writer was given: a copy whose metadata changed, several copies, a copy
// under a former origin, a committed copy the engine writes whole.
// Superseded runs stay in MLflow's trash (mlflow gc removes them); every
// reader skips them.
//
// # Appending to a grown run
//
// When the engine's ledger recorded the run with its mark and the source
// run grew (sinks.Appender), AppendRun re-opens the same MLflow run
// instead: it checks that the server holds one active, complete copy of
// the origin (else of one of its former origins, when the ledger's entry
// was under that: the copy is re-tagged with the new origin when the
// append begins) carrying the ledger's mark, keeps the copy's run.json and
// coverage.json under runferry/append-base/, sets mlflow.runferry.appending
// to the mark and removes mlflow.runferry.complete. An append cut short (a
// kill, a failed attempt) is thus an incomplete run that says which copy
// it extends: the next AppendRun with the same mark continues it in place,
// from the kept run.json and coverage.json, reading the history of each
// key whose latest step lies beyond the ledger's cursor to find the new
// points written already, which it does not send again (no run deleted,
// no point doubled). It then uploads the new run.json, logs the params
// added and every tag (deleting tags the source dropped), appends the new
// points only (system metrics under the MLflow keys the copy gave them, a
// new one never under a key another series holds; new per-core CPU
// samples extend the CPU mean, and their points are added to the folded
// points file), sends only the files that are new or changed (compared by
// sha256 with the digests the copy's coverage.json recorded) and deletes
// the files the source no longer has, sends only the console segments
// that changed (MLflow cannot append to an artifact: a console that grew
// sends its last, partial segment and the new ones, and a copy holding one
// logs.jsonl beyond the segment size, as versions before segments wrote
// it, is rewritten once into segments; a source's own output.log held in
// segments likewise sends only its segments that changed), replaces rich values, and at
// commit merges the coverage (mapped keys, fixups and count of the points
// held come from the earlier coverage.json) and sets status, end time, the
// run's name (a run renamed at the source keeps its run id),
// mlflow.runferry.mark and mlflow.runferry.complete last. MLflow cannot change a logged
// param, a start time or user, nor move a run; a run whose param value,
// start, user, parent, dataset inputs or deletion changed, whose end
// time went away, whose new points fall at a step already held (SQL
// stores could merge them with held points unseen), whose new per-core
// CPU points fall in a sample folded into the CPU mean already, whose
// per-core CPU series were folded and now are not (or the reverse), or
// that holds logged model files (re-created logged models would get new ids) is refused
// (sinks.ErrCannotAppend) and written anew as above, the report saying why.
//
// HTTP retries never resend a request that may have been applied and would
// duplicate: metric batches and run creation are retried only after a 429,
// a 503 or a failed connect (see internal/mlflowapi); other failures fail
// the attempt and the engine retries the run, which redoes it.
//
// # Nested runs
//
// The engine writes runs concurrently and in source order, so a child may
// be written before its parent. A child is created first and then looks up
// its parent by origin; a parent, when it commits, points every run naming
// it (mlflow.runferry.parent_key) at itself, restoring and re-deleting deleted
// children for the write; a child deleted between the listing and its link
// (its own commit, deleted in the source, deletes it last) is read again and
// linked the same way. Whichever comes first, the link is made, and a
// parent written again relinks its children.
//
// # Limits
//
// Limits() declares 1000 points per write, max-in-flight runs (default
// 8) and AdaptiveWrites: the engine adapts how many metric batches are in
// flight (engine/inflight), starting at the runs in flight and moving
// between one and that number to the number the server takes fastest.
// SQLite-backed servers serialise writers and are slower with more than
// one or two (lock contention); servers with several workers and a
// PostgreSQL store get faster with more. A 429 or 503 is retried and
// halves the number.
//
// # Model registry
//
// After the runs, the engine hands the sink the source's registered models
// (sinks.RegistryWriter). A model keeps its name, description, tags and
// aliases, and carries runferry.origin and runferry.created_at (the
// source's creation time); a model of that name that is not runferry's
// copy of the same origin is an error, never merged. Versions are created
// in the source's order (so an empty model gets the source's numbers) and
// carry runferry.version (the source's number, by which a re-run finds
// them: no version is created twice), runferry.source_run (the source
// run's origin) and runferry.created_at; description, tags and stage
// follow the source. A version's run_id is the run this sink wrote from
// its source run, and its source URI points at that run's files when the
// source's pointed into its run; a version whose source is a logged model
// of its run (models:/<model id>, as log_model registers it) points at the
// logged model this sink re-created from it (source and model_id), and
// that model's mlflow.modelVersions tag, which the server rewrites then,
// is set back to the source's. A version whose run is not in the
// destination keeps its source URI, has no run_id, and is counted. MLflow
// cannot change a version's source: a version created before its run was
// written again keeps pointing at the earlier copy of the run and of its
// logged model (deleted, files kept); the MLflow source shows both by the
// source's identities.
// Registered model names are not prefixed by experiment-prefix.
//
// # Traces
//
// After the registry, the engine hands the sink each trace of the copied
// experiments (sinks.TraceWriter). A trace is created with StartTraceV3
// (POST /api/3.0/mlflow/traces) under its source id when the destination
// has no trace of that id (on the source's own server, a fresh id), with
// its request time, duration, state, previews, client request id, request
// metadata and tags, plus runferry.origin (by which a re-run finds it:
// the sink lists each experiment's traces once) and runferry.source_run
// (the source run's origin). Its span document is uploaded as traces.json
// under the trace's artifact location, then mlflow.runferry.complete is set; a
// copy found without it gets its spans again. mlflow.sourceRun names the
// run this sink wrote from the source run; a trace whose run is not in the
// destination has no link and is counted. The source's storage tags
// (mlflow.artifactLocation, mlflow.trace.spansLocation) are the
// destination server's own. Assessments are counted, not copied. A re-run
// brings tags up to date; the rest of a trace's info is written once.
//
// # Benchmarks
//
// docs/BENCHMARKS.md (`RUNFERRY_BENCH_ONLY=mlflow bash bench/run.sh`)
// compares a copy into SQLite-backed and PostgreSQL-backed servers with a
// bare log-batch loop (bench/mlflowceiling) and an MLflow-to-MLflow copy
// with mlflow-export-import. The servers are the limit: runferry spends
// about 1.2 CPU-seconds on half a million points. Beyond the metric
// batches, each run costs about fifteen requests (searches, creation,
// params and tags, file uploads, the final status and tags), about 3% of a
// SQLite server's time.
package mlflow
