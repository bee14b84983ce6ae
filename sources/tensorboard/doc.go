// Package tensorboard is the source for TensorBoard event files: the
// `tensorboard:PATH` location. It reads them with internal/tfevents, no
// TensorFlow needed.
//
// # Location
//
//	tensorboard:PATH[?experiment=NAME]
//
// PATH is a log folder: any tree holding event files (files whose name
// holds "tfevents", as TensorBoard decides). A PATH that does not exist, is
// not a folder, or holds no event file is a fatal error; folders and files
// the walk cannot read are the source's problems (sources.ProblemReporter).
//
// # Identity
//
// PATH is one experiment; every folder holding event files is a run, named
// by its path relative to PATH (the root's own files: PATH's base name).
// Folders named train or validation (Keras' TensorBoard callback) belong
// to the run of the folder above them, their tags prefixed with the folder
// name and "/" (train/epoch_loss), as TensorBoard shows them side by side.
// A subfolder's tag whose key the run's own folder gives already (it logs
// "train/loss" itself and train/ logs "loss") is "train folder/loss"
// instead ("train folder 2/loss", ... if that is taken too), counted in
// Omitted, so that two series never become one key.
//
//	Experiment.Origin  {tensorboard, ROOT}        ROOT: PATH absolute, symlinks resolved
//	Run.Origin         {tensorboard, ROOT#REL}    REL: the run folder relative to ROOT ("." for ROOT)
//	Experiment.Name    the experiment option, else ROOT's base name
//
// # Mapping
//
//	TensorBoard                                  schema
//	simple_value                                 Metric (float32 widened)
//	tensor summary holding one number (float,    Metric; plugin "scalars" or none
//	double, half, bfloat16, int8..int64, uint,   (TF2 writers name the plugin in a tag's
//	bool)                                        first event only)
//	Event.step, Event.wall_time                  Metric.Step, Metric.Time (Unix ms: rounded
//	                                             to the µs, then floored)
//	text (plugin "text", or a string tensor)     one string holding a JSON object (a
//	                                             hyperparameter dump: HF Trainer's args,
//	                                             json.dumps(config)): Params TAG.PATH (TAG
//	                                             less "/text_summary"; nested objects
//	                                             joined with "."; strings as they are,
//	                                             other values as JSON); else LogLine per
//	                                             line, "TAG (step N): LINE", the event's time
//	hparams session_start_info                   Params (strings as they are, numbers
//	                                             and bools as JSON); group_name, model_uri,
//	                                             monitor_url: tags tensorboard.hparams.*;
//	                                             start_time_secs: Run.Start when earlier
//	hparams session_end_info                     Run.Status (SUCCESS, UNKNOWN: FINISHED;
//	                                             FAILURE: FAILED; RUNNING: RUNNING),
//	                                             end_time_secs: Run.End; tag
//	                                             tensorboard.hparams.status
//	hparams experiment                           tag tensorboard.hparams.experiment (JSON:
//	                                             name, description, user, hparams, metrics)
//	histo (HistogramProto)                       RichValue "tensorboard.histogram": min, max,
//	                                             num, sum, sum_squares, bucket_limit, bucket
//	TF2 histogram tensor (k×3)                   RichValue "tensorboard.histogram": buckets
//	                                             [[left, right, count], ...]
//	image, TF2 image tensor (width, height,      RichValue "image-file" per image (path,
//	images...)                                   format, width, height, size, sha256), its
//	                                             file an Artifact media/images/KEY/STEP_N.EXT
//	                                             read from the event file when opened
//	source_metadata.writer                       tag tensorboard.writer
//	first and last wall time                     Run.Start, Run.End
//	(no hparams session end)                     Run.Status FINISHED: event files record none
//	the run folder                               tag tensorboard.folder
//
// Event files record no status, user or notes. Not mapped, and counted by
// kind in the report (sources.Omitter): audio, old-style histograms, values
// without data, tensors that are not scalars outside the known plugins,
// summaries of other plugins (pr_curves, mesh, custom_scalars, ...), graph
// and meta-graph records, run metadata, log messages and session logs.
// Metric points whose step goes below an earlier point of their key (a
// restart from a checkpoint) are dropped and counted too: TensorBoard
// itself purges the older points instead, which needs the whole file.
// A second value for a param key that differs from the first is counted
// and the first kept.
//
// # Reading
//
// A run's event files are read group by group (the run folder, then its
// train/ and validation/ folders), each group's files in the order of their
// first event's wall time (then name), records streamed one at a time. A
// record with a wrong data checksum is skipped and reading goes on; a
// wrong length checksum or a truncated tail ends the file; undecodable
// events are skipped. Each is named in Run.Damage as "FILE: offset N:
// REASON", FILE relative to PATH, and the run keeps everything readable.
// Runs reads each run once to fold its metadata, counting its points and
// image bytes for progress (sources.Sizer); Metrics, RichValues,
// Logs and Artifacts each read it again, so memory stays bounded by a page
// of PageSize values plus the largest record. Fingerprint hashes the event
// files' names, sizes and modification times, damaged runs' too (the
// ledger names their damage again while they are unchanged); a run with an
// event file that cannot be opened gets none, so a later sync reads it
// again.
package tensorboard
