package mlflowsql

// RevisionIDs gives the ids of the alembic revisions the source reads,
// oldest first, for the tests.
func RevisionIDs() []string {
	ids := make([]string, len(revisions))
	for i, r := range revisions {
		ids[i] = r.id
	}
	return ids
}
