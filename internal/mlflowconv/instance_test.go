package mlflowconv

import "testing"

// TestInstance: one server, one instance name, whatever the scheme, default
// port, case of the host or trailing slashes; never the credentials.
func TestInstance(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"http://127.0.0.1:5000", "127.0.0.1:5000"},
		{"http://127.0.0.1:5000/", "127.0.0.1:5000"},
		{"https://127.0.0.1:5000", "127.0.0.1:5000"},
		{"http://MLflow.Acme.internal", "mlflow.acme.internal"},
		{"https://mlflow.acme.internal:443/", "mlflow.acme.internal"},
		{"http://mlflow.acme.internal:80", "mlflow.acme.internal"},
		{"http://mlflow.acme.internal:443", "mlflow.acme.internal:443"},
		{"https://alice:s3cret@mlflow.acme.internal/team//a/?x=1#f", "mlflow.acme.internal/team/a"},
		{"http://[::1]:5000/mlflow/", "[::1]:5000/mlflow"},
	} {
		got, err := Instance(tt.url)
		if err != nil || got != tt.want {
			t.Errorf("Instance(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
	if _, err := Instance("not a url"); err == nil {
		t.Error("Instance accepted a location without a host")
	}
}
