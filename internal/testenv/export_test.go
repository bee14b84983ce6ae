package testenv

// MakeSQLiteTemplate exposes makeSQLiteTemplate to the external tests.
var MakeSQLiteTemplate = makeSQLiteTemplate
