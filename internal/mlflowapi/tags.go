package mlflowapi

// MLflow's own tags that runferry maps to and from schema.Run fields.
const (
	TagRunName     = "mlflow.runName"
	TagUser        = "mlflow.user"
	TagNote        = "mlflow.note.content"
	TagParentRunID = "mlflow.parentRunId"
	TagGitCommit   = "mlflow.source.git.commit"
	TagGitRepo     = "mlflow.source.git.repoURL"
	TagSourceName  = "mlflow.source.name"
	TagSourceType  = "mlflow.source.type"     // LOCAL, NOTEBOOK, JOB, PROJECT: the UI's icon before the source name
	TagInputs      = "mlflow.inputs.datasets" // dataset inputs, read as a tag (JSON)
)
