package transfer

// SetOriginsInMemory sets how many notes of the origins listed a job holds
// in memory before writing them to its temporary database, and returns a
// function that restores the default.
func SetOriginsInMemory(n int) (restore func()) {
	before := originsInMemory
	originsInMemory = n
	return func() { originsInMemory = before }
}
