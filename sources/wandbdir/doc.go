// Package wandbdir is the source for W&B run folders on disk: the
// `wandb:PATH` location.
//
// # Location
//
//	wandb:PATH[?entity=NAME][&crashed-after=DURATION]
//
// PATH is a wandb/ folder, one run folder, or any tree holding run folders.
// Run folders are found by walking PATH: a folder holding a `*.wandb` file
// (SDK 0.10+), or a pre-0.10 folder holding wandb-history.jsonl,
// wandb-events.jsonl or wandb-summary.json. Run folders are not searched
// further; symlinked folders (`latest-run`) and `.git` are never entered. A
// PATH that does not exist, cannot be listed, or holds no run folder, is a
// fatal error.
//
// Nothing unreadable is left out without a word. A folder that cannot be
// listed, a `.wandb` file that cannot be opened, and a run folder with
// neither log nor pre-0.10 history (named run-, offline-run- or
// dryrun-<timestamp>-<id>, or whose files/ holds wandb-metadata.json,
// wandb-summary.json or config.yaml) are not copied but named by path as
// the source's problems (sources.ProblemReporter: the job reports them and
// exits 3). A run file or folder under files/ that cannot be read is named
// in the run's Damage, and the run gets no fingerprint, so every later job
// copies it again until it is whole.
//
// Option entity: the W&B entity assumed for runs that name none (offline
// runs), so their origins match what W&B's cloud calls them instead of
// naming their folder (see Identity).
//
// Option crashed-after (a Go duration, default 5m): how long a run without
// an exit record may have been silent before it counts as crashed (see
// Run.Status below).
//
// # Identity
//
// Segments (run folders) are grouped into runs by (project, run id), the
// run id taken from the RunRecord (else the `run-<id>.wandb` file name; for
// folders without a log, the folder name after its timestamp). A resumed
// run's segments are merged in RunRecord.start_time order, as `wandb sync`
// replays them. The project is the RunRecord's, else (no `.wandb`) the one
// wandb-metadata.json names (SDKs before 0.10 kept it there), else the name
// of the folder holding wandb/ (else the run folder's parent). The entity is the last one
// a segment names, else the entity option.
//
//	Experiment.Origin  {wandb, ENTITY/PROJECT}        FOLDER#PROJECT when there is no entity
//	Run.Origin         {wandb, ENTITY/PROJECT/RUN_ID} FOLDER#PROJECT/RUN_ID when there is no entity
//
// The entity names the W&B instance, so the entity forms match the paths
// W&B's API uses wherever the folder lies. A run without an entity (an
// offline run never synced, and no entity option) is named by FOLDER, the
// folder holding its run folder (usually a wandb/ folder): its absolute
// path, symbolic links resolved, in slash form. Every path by which that
// folder is reached (relative or absolute, through a symlink, the folder, a
// tree above it or one run folder in it) gives the same origins, so two
// machines' offline runs of one project never merge; a folder moved or
// copied elsewhere is another source, whose runs a destination holds
// again; give ?entity= for origins independent of where the runs lie. W&B
// forbids "/", "#" and ":" in project names and run ids, so every form is
// unambiguous. Experiment.Name is ENTITY/PROJECT, or PROJECT; CreatedAt is
// its earliest run's start.
//
// Former origins (sources.FormerOriginer): earlier runferry versions named runs
// without an entity PROJECT/RUN_ID (and their experiments PROJECT); copies
// written under those are found and replaced, never duplicated.
//
// # Mapping
//
// A segment's later run records (the SDK's updates when run.name,
// run.notes or run.tags are set after wandb.init) win over its first one
// for each field they set; a segment's tags are those of its last run
// record that has any. Across segments, later segments win for each field
// they set, tags included: the labels are the tags of the last segment
// that sets any, as W&B shows them after `wandb sync` (the SDK's run record
// carries the run's tags whole, and W&B's server replaces a run's tags by a
// list that is not empty; a resumed segment that sets none keeps the
// earlier ones, as the server keeps them), so a tag removed in a resumed
// segment (run.tags = ...) is gone. The light header (ls, the sync
// plan) names a run renamed in the middle of a large log by its earlier
// name until a copy read the log and the log cache keeps the later one
// (header.go; docs/SYNC.md, "Which name a renamed W&B run shows").
//
//	W&B                                   schema
//	RunRecord.display_name                Run.Name (the run id when empty, as offline)
//	RunRecord.tags (last segment with any)  Run.Labels
//	RunRecord notes, run_group, job_type  Run.Notes, Group, JobType
//	host (run record, environment, metadata)      Run.Host
//	username (environment record)                 Run.User (the run's user: kept in MLflow)
//	username (wandb-metadata.json) when another   tag wandb.username (the machine's login
//	                                              name: drop-personal leaves it out of MLflow)
//	program (environment, metadata)               Run.Program
//	git remote / commit (run record, env, metadata) Run.GitRemote, GitCommit
//	first segment's start_time            Run.Start (else environment started_at,
//	                                      metadata startedAt, first timestamp)
//	last segment's start + its runtime    Run.End (runtime = exit runtime less the runtime
//	                                      before the segment); the last activity seen
//	                                      (history, stats, console) when later or when
//	                                      there is no exit record
//	exit record of the last segment       Run.Status: code 0 FINISHED; 130, 137, 143 (signals)
//	                                      and 255 (KeyboardInterrupt) KILLED; other codes
//	                                      FAILED. No exit record (or not_complete): KILLED
//	                                      after a preempting record; in a log damaged other
//	                                      than by a truncated end (which a live writer or a
//	                                      crash leaves, judged as below), FAILED
//	                                      with tag wandb.state=unknown and a Run.Damage note
//	                                      (the exit record may be in the damage: not judged
//	                                      from the times); else, as W&B judges by
//	                                      heartbeat, FAILED with tag wandb.state=crashed when
//	                                      silent longer than crashed-after (default 5m), else
//	                                      RUNNING with wandb.state=running. Silent since: the
//	                                      earlier of the latest time the run's own records
//	                                      carry (the segment's start, its last record's
//	                                      time) and its log's modification time, judged
//	                                      against the time the source was opened: live
//	                                      only while both are recent, so a crashed run in
//	                                      a folder copied without its times (cp -r, rsync
//	                                      without -t, unzip) is crashed; a live run whose
//	                                      records stay silent longer (no history, system
//	                                      metrics or console output) needs a longer
//	                                      crashed-after
//	wandb-metadata.json before 0.10       Run.Status from state (finished, failed, killed,
//	(no .wandb)                           kept in wandb.state) or exitcode (wandb.exit_code);
//	                                      state running: judged as above, heartbeatAt and
//	                                      history times as the records', the folder's
//	                                      files' times as the log's;
//	                                      project (the run's experiment), name, notes,
//	                                      jobType
//	RunRecord.config + config records     Run.Config (JSON object, `_wandb` removed); from
//	                                      config.yaml (`value` unwrapped) when the logs hold
//	                                      no config at all
//	summary records (RunRecord.summary    Run.Summary (JSON object, kept whole, `_wandb`,
//	first), updates then removes          `_step`, `_runtime` included); from
//	                                      wandb-summary.json when the logs hold none
//	history row `_step`                   Metric.Step (rows without one: previous step + 1;
//	                                      rows whose step goes backwards are dropped and
//	                                      counted in Run.Damage)
//	history row `_timestamp` (float s)    Metric.Time (Unix ms, rounded to the µs, then
//	                                      floored); 0 when absent
//	`_runtime`, `_wandb`                  not metrics (`_runtime` = time since start)
//	numeric history values                Metric; keys are nested paths joined with "/"
//	booleans                              Metric with value 0 or 1
//	dicts without "_type"                 flattened into their leaves
//	media dicts (with "_type"), strings,  RichValue: Type = "_type" (or string, list,
//	lists, null                           object, null), JSON = the whole value, Files =
//	                                      every "path" of a media dict (relative to files/)
//	unparsable value_json                 RichValue of Type "invalid"
//	stats record items                    Metric "system/<item key>" (e.g.
//	                                      system/gpu.0.temp), Time = the record's timestamp,
//	                                      Step = the sample's index in the run (0, 1, ...,
//	                                      across segments), as MLflow numbers its own
//	                                      system metrics
//	output / output_raw records           LogLine: chunks joined per stream, split on "\n";
//	                                      a line keeps the text after its last "\r" (progress
//	                                      bars); Time = the chunk that began the line; a
//	                                      segment's unfinished line is flushed at its end
//	output_logger records (0.27+)         LogLine on stdout, time unknown
//	files/output.log                      LogLine on stdout, time unknown: every segment's
//	                                      when the logs hold no console record; a segment's
//	                                      when its `.wandb` is damaged and output.log has
//	                                      more lines than its records gave (a folder copied
//	                                      mid-run), the choice named in Run.Damage
//	every file under files/ (pre-0.10:    Artifact: path relative to files/, size,
//	the run folder less logs/, tmp/,      sha256; a later segment's copy wins; dangling
//	*.wandb)                              symlinks and symlinks to folders are listed with
//	                                      a Problem and noted in Run.Damage
//	reader damage, undecodable records,   Run.Damage ("FILE: offset N: reason", FILE
//	bad JSON lines, bad config/summary    relative to PATH); the run keeps everything
//	                                      readable
//
// Tags under TagPrefix ("wandb.") hold what has no field: entity, project,
// run_id, sweep_id, python, sdk_version, os, args (a JSON array),
// code_path, root, executable, email, docker, cuda, gpu, gpu_count,
// cpu_count, storage_id, exit_code, state (W&B's run state where no exit
// record decides the status: running, crashed, or a pre-0.10 folder's
// recorded state), segments (when more than one),
// starting_step, branch_point (RUN@METRIC=VALUE of a fork) and
// step_metric.NAME (the custom x-axis define_metric gave NAME; the MLflow
// sink plots NAME against it where it can, see sinks/mlflow). Params stay
// empty: flattening config into params is a transform's job.
//
// Not mapped: telemetry beyond versions, artifact and use_artifact records
// (the files they log are in files/ or W&B's artifact store), alerts,
// TensorBoard records, the define_metric summary options.
//
// # Reading
//
// Experiments and Runs discover run folders once per Source; Runs reads
// each run's logs once to fold its metadata; Metrics, RichValues and Logs
// stream the logs again (pages of PageSize), so memory stays bounded by a
// page plus the largest record whatever the size of a run. Each pass
// decodes only the records it needs: history rows are scanned in place and,
// when they hold only numbers, turned into points without decoding them
// into items (wandbfile's zero-copy scanner: Scanner, PeekRecord, Row,
// RowConverter); anything unusual takes the plain wandbfile.Decode and
// ConvertValues path, with the same result. Fingerprint hashes names,
// sizes and modification times only (and whether the run was judged
// crashed); it is empty for a run with something unreadable.
//
// Light headers (sources.HeaderLister, see header.go): a run described
// from its run records, wandb-metadata.json and the last blocks of each
// log (wandbfile.NewTailReader), for a sync's plan and `ls --no-count`. The
// plan takes each run's fingerprint from its header and reads in full only
// the runs it transfers, so a sync in which nothing changed reads no
// history.
package wandbdir
