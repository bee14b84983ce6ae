package location

// Option is one setting of an adapter, given in a location's query
// ("?name=value") or taken from an environment variable.
type Option struct {
	Name    string // kebab-case query key
	Default string
	Help    string // first sentence is the short help
	EnvVar  string // environment variable read when the query lacks it
	// Secret: the value is never printed, and only EnvVar gives it: the
	// option in a location's query is refused (see CheckSecrets).
	Secret bool
}

// Description describes an adapter once; `runferry backends`, `--help` and
// the README are all made from it.
type Description struct {
	Scheme  string   // primary scheme, e.g. "mlflow+https"
	Aliases []string // further schemes served by the same adapter
	Kind    Kind     // how the part after the scheme is read
	Syntax  string   // e.g. "wandb:PATH"
	Summary string   // one line
	Help    string   // paragraphs: what is read or written, how identity works
	Options []Option
	Example string
}

// Schemes returns the primary scheme followed by the aliases.
func (d Description) Schemes() []string { return append([]string{d.Scheme}, d.Aliases...) }

// Option returns the option called name.
func (d Description) Option(name string) (Option, bool) {
	for _, o := range d.Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}
