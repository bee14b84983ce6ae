package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	sinksall "github.com/runferry/runferry/sinks/all"
	sourcesall "github.com/runferry/runferry/sources/all"
)

// TestURLPathsRefused: a path scheme given a URL (object storage, HTTP) is
// a usage error saying it is not supported (parquet: takes s3:// URLs,
// tested against an S3 server in s3_test.go), and nothing is created where
// the URL would have named a local folder ("s3:"); the same for the
// archive verbs and for such URLs given without a scheme.
func TestURLPathsRefused(t *testing.T) {
	src, err := filepath.Abs("../../testdata/wandb/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"sync", "--accept-gaps", "wandb:" + src, "parquet:gcs://bucket/x"}, `Google Cloud Storage is written gs://: did you mean "parquet:gs://bucket/x"?`},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "parquet:az://container/x"}, "object storage (Azure Blob Storage) is not supported yet"},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "parquet:https://files.example.com/x"}, "over HTTPS is not supported"},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "parquet:http://files.example.com/x"}, "over HTTP is not supported"},
		{[]string{"copy", "--accept-gaps", "wandb:s3://bucket/wandb", "parquet:out"}, "object storage (S3) is not supported yet"},
		{[]string{"check", "wandb:gs://bucket/x", "parquet:x"}, "object storage (Google Cloud Storage) is not supported yet"},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "s3://bucket/x"}, `unknown scheme "s3": did you mean "parquet:s3://bucket/x"?`},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "gs://bucket/x"}, `unknown scheme "gs": did you mean "parquet:gs://bucket/x"? (a runferry archive in Google Cloud Storage)`},
		{[]string{"archive", "summary", "parquet:gcs://bucket/x"}, `did you mean "parquet:gs://bucket/x"?`},
		{[]string{"archive", "prune", "az://c/x", "--keep", "2"}, "object storage (Azure Blob Storage) is not supported yet"},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "parquet:file:///tmp/x"}, `use parquet:/tmp/x`},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "parquet:s3:bucket/x"}, "write the bucket as a URL: parquet:s3://BUCKET/PREFIX"},
		{[]string{"copy", "--accept-gaps", "wandb:" + src, "parquet:gs:/bucket/x"}, "write the bucket as a URL: parquet:gs://BUCKET/PREFIX"},
	}
	for _, c := range cases {
		args := append(c.args, "--state", ledger)
		if c.args[0] == "archive" || c.args[0] == "ls" || c.args[0] == "check" {
			args = c.args
		}
		code, out, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, errOut, out, c.want)
		}
		entries, _ := os.ReadDir(cwd)
		for _, e := range entries {
			t.Errorf("%v created %q in the working directory", c.args, e.Name())
			os.RemoveAll(filepath.Join(cwd, e.Name()))
		}
	}
	if _, err := os.Stat(ledger); !os.IsNotExist(err) {
		t.Errorf("a refused location still created the ledger (%v)", err)
	}
}

// TestHTTPURLHint: an http(s) URL given where an MLflow location was meant
// gets "did you mean mlflow+http://...", without echoing a password.
func TestHTTPURLHint(t *testing.T) {
	const secret = "pl4nted-pw-HINT"
	for _, c := range []struct{ arg, want string }{
		{"http://127.0.0.1:5000", `did you mean "mlflow+http://127.0.0.1:5000"?`},
		{"https://mlflow.example.com/prefix", `did you mean "mlflow+https://mlflow.example.com/prefix"?`},
		{"http://alice:" + secret + "@127.0.0.1:5000", `did you mean "mlflow+http://alice:***@127.0.0.1:5000"?`},
	} {
		code, _, errOut := runCLI(t, "ls", c.arg)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, secret) {
			t.Errorf("ls %s: exit %d, stderr %q; want exit 2 and %q", c.arg, code, errOut, c.want)
		}
	}
}

// writeFileStore writes a minimal MLflow file store by hand: experiment 0
// with its meta.yaml and one run folder, as MLflow lays it out.
func writeFileStore(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"0/meta.yaml": "artifact_location: file://" + dir + "/0\ncreation_time: 1700000000000\nexperiment_id: '0'\n" +
			"last_update_time: 1700000000000\nlifecycle_stage: active\nname: Default\n",
		"0/4f2c1e/meta.yaml":        "artifact_uri: file://" + dir + "/0/4f2c1e/artifacts\nexperiment_id: '0'\nrun_id: 4f2c1e\nstatus: 3\n",
		"0/4f2c1e/metrics/loss":     "1700000000000 0.5 0\n",
		"0/4f2c1e/params/lr":        "0.1",
		"0/4f2c1e/tags/mlflow.user": "alice",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMLflowStoreHints: a bare path that is or holds an MLflow store is
// answered with how to serve it (mlflow server --backend-store-uri ...
// then mlflow+http://...), not "did you mean parquet:..."; the same store
// given as wandb: or parquet: is refused with that advice and left as it
// was. Other bare paths get a suggestion that fits what they hold.
func TestMLflowStoreHints(t *testing.T) {
	root := t.TempDir()
	project := filepath.Join(root, "project")
	mlruns := filepath.Join(project, "mlruns")
	writeFileStore(t, mlruns)
	before := listTree(t, root)
	out := filepath.Join(t.TempDir(), "out")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"copy", "--accept-gaps", mlruns, "parquet:" + out}, "holds an MLflow file store; read it with mlflow+file:" + mlruns},
		{[]string{"copy", "--accept-gaps", mlruns + "/", "parquet:" + out}, "read it with mlflow+file:" + mlruns},
		{[]string{"ls", project}, "holds an MLflow file store; read it with mlflow+file:" + mlruns},
		{[]string{"copy", "--accept-gaps", "wandb:" + mlruns, "parquet:" + out}, "is an MLflow file store, not what wandb: takes; read it with mlflow+file:" + mlruns},
		{[]string{"copy", "--accept-gaps", "wandb:../../testdata/wandb/fixtures", "parquet:" + mlruns}, "is an MLflow file store, not what parquet: takes"},
		{[]string{"ls", "elsewhere/mlruns/"}, "elsewhere/mlruns/ would be an MLflow file store, which runferry reads as mlflow+file:elsewhere/mlruns/"},
		{[]string{"ls", "mlflow.db"}, "mlflow.db would be an MLflow SQLite store: read it directly: mlflow+sqlite:mlflow.db"},
	} {
		code, stdout, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "did you mean") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, errOut, stdout, c.want)
		}
	}
	if after := listTree(t, root); after != before {
		t.Errorf("the MLflow store changed:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused copy created the destination (%v)", err)
	}

	// Paths holding W&B run folders or a runferry archive: the fitting scheme.
	code, _, errOut := runCLI(t, "ls", "../../testdata/wandb/fixtures")
	if code != 2 || !strings.Contains(errOut, `did you mean "wandb:../../testdata/wandb/fixtures"? (it holds W&B run folders)`) {
		t.Errorf("bare W&B folder: exit %d, %q", code, errOut)
	}
	archive := filepath.Join(t.TempDir(), "archive")
	if code, o, e := runCLI(t, "copy", "--accept-gaps", "wandb:../../testdata/wandb/fixtures", "parquet:"+archive, "--no-state"); code != 0 {
		t.Fatalf("copy into an archive: exit %d\n%s\n%s", code, o, e)
	}
	code, _, errOut = runCLI(t, "ls", archive)
	if code != 2 || !strings.Contains(errOut, `did you mean "parquet:`+archive+`"? (it holds a manifest.json`) {
		t.Errorf("bare archive: exit %d, %q", code, errOut)
	}
}

// TestMLflowSQLiteHint: a real MLflow SQLite store from ../shared/samples,
// given bare or inside its folder, is answered with the mlflow+sqlite:
// location that reads it directly.
func TestMLflowSQLiteHint(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "samples", "mlflow-sqlite", "Agnes4Him__mlops-zoomcamp-2024", "02-experiment-tracking")
	if _, err := os.Stat(dir); err != nil {
		testenv.Unavailable(t, "the real-world samples in ../shared/samples", err.Error())
	}
	db := filepath.Join(dir, "mlflow.db")
	want := "holds an MLflow SQLite store; read it directly: mlflow+sqlite:" + db
	for _, arg := range []string{db, dir} {
		code, _, errOut := runCLI(t, "ls", arg)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("ls %s: exit %d, %q; want %q", arg, code, errOut, want)
		}
	}
	// A copy of it under another name is still recognised by its schema.
	other := filepath.Join(t.TempDir(), "tracking.sqlite")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "copy", "--accept-gaps", "wandb:"+other, "parquet:"+t.TempDir())
	if code != 2 || !strings.Contains(errOut, "is an MLflow SQLite store, not what wandb: takes") {
		t.Errorf("wandb:%s: exit %d, %q", other, code, errOut)
	}
}

// listTree renders every path under root with its size, to prove a tree
// unchanged.
func listTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b.WriteString(rel)
		if !fi.IsDir() {
			fmt.Fprintf(&b, "=%d", fi.Size())
		}
		b.WriteString(";")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSecretsInLocationRefusedCLI: a token, password or user-info password
// in an MLflow location, as source or destination, is a usage error that
// points to the environment variable, and the secret is not printed.
func TestSecretsInLocationRefusedCLI(t *testing.T) {
	const secret = "pl4nted-LOC-secret"
	dst := "parquet:" + filepath.Join(t.TempDir(), "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ls", "mlflow+http://127.0.0.1:1/?token=" + secret}, "set MLFLOW_TRACKING_TOKEN in the environment instead"},
		{[]string{"ls", "mlflow+https://127.0.0.1:1/?username=bob&password=" + secret}, "set MLFLOW_TRACKING_PASSWORD in the environment instead"},
		{[]string{"ls", "mlflow+http://bob:" + secret + "@127.0.0.1:1/"}, "secrets are read only from the environment: set MLFLOW_TRACKING_PASSWORD"},
		{[]string{"copy", "--accept-gaps", "mlflow+http://127.0.0.1:1/?token=" + secret, dst, "--no-state"}, "set MLFLOW_TRACKING_TOKEN in the environment instead"},
		{[]string{"copy", "--accept-gaps", "wandb:../../testdata/wandb/fixtures", "mlflow+http://127.0.0.1:1/?token=" + secret, "--no-state"}, "set MLFLOW_TRACKING_TOKEN in the environment instead"},
		{[]string{"copy", "--accept-gaps", "wandb:../../testdata/wandb/fixtures", "mlflow+https://alice:" + secret + "@127.0.0.1:1/", "--no-state"}, "set MLFLOW_TRACKING_PASSWORD"},
		{[]string{"check", "wandb:../../testdata/wandb/fixtures", "mlflow+http://127.0.0.1:1/?password=" + secret}, "set MLFLOW_TRACKING_PASSWORD in the environment instead"},
		{[]string{"ls", "mlflow+http://127.0.0.1:1/?api-key=" + secret}, "secrets are read only from the environment: MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN"},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(out+errOut, secret) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2, %q and not the secret", c.args, code, errOut, c.want)
		}
	}
}

// fakeTLSMLflow is an httptest TLS server answering every MLflow call with
// an empty JSON object (no experiments), recording the client certificate's
// name and the Authorization header of the last request. It serves the TLS
// and auth plumbing tests only; the MLflow adapters are tested against real
// servers.
func fakeTLSMLflow(t *testing.T, clientCAs *x509.CertPool) (srv *httptest.Server, ca string, seen *atomic.Value) {
	seen = &atomic.Value{}
	seen.Store("")
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := ""
		if len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		seen.Store(who + "|" + r.Header.Get("Authorization"))
		io.WriteString(w, `{}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if clientCAs != nil {
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca, seen
}

// TestMLflowLocationOptionsCLI: the options of an MLflow location take
// effect through the CLI: server-cert and insecure-tls decide whether a
// private CA's server is reached, client-cert passes a server that verifies
// clients, username sends basic auth with MLFLOW_TRACKING_PASSWORD, and no
// output shows the password or its basic-auth encoding.
func TestMLflowLocationOptionsCLI(t *testing.T) {
	const pw = "pl4nted-basic-PW"
	t.Setenv("MLFLOW_TRACKING_PASSWORD", pw)
	t.Setenv("MLFLOW_TRACKING_USERNAME", "")
	t.Setenv("MLFLOW_TRACKING_TOKEN", "")
	t.Setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "")
	t.Setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", "")
	t.Setenv("MLFLOW_TRACKING_INSECURE_TLS", "")
	srv, ca, seen := fakeTLSMLflow(t, nil)
	base := "mlflow+https://" + strings.TrimPrefix(srv.URL, "https://")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+pw))

	code, _, errOut := runCLI(t, "ls", base)
	if code != 1 || !strings.Contains(errOut, "?server-cert=PATH") {
		t.Errorf("untrusted server: exit %d, %q", code, errOut)
	}
	for _, c := range []struct{ loc, seen string }{
		{base + "?server-cert=" + ca, "|"},
		{base + "?insecure-tls=true", "|"},
		{base + "?server-cert=" + ca + "&username=alice", "|" + basic},
	} {
		seen.Store("")
		code, out, errOut := runCLI(t, "ls", "--count", c.loc, "-v")
		if code != 0 || seen.Load() != c.seen {
			t.Errorf("ls %s: exit %d, server saw %q (want %q)\n%s\n%s", c.loc, code, seen.Load(), c.seen, out, errOut)
		}
		if strings.Contains(out+errOut, pw) || strings.Contains(out+errOut, basic[6:]) {
			t.Errorf("ls %s printed the password", c.loc)
		}
	}

	// Mutual TLS: a server that verifies client certificates.
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "runferry-cli"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	clientPEM := filepath.Join(dir, "client.pem")
	os.WriteFile(clientPEM, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	msrv, mca, mseen := fakeTLSMLflow(t, pool)
	mbase := "mlflow+https://" + strings.TrimPrefix(msrv.URL, "https://") + "?server-cert=" + mca
	start := time.Now()
	if code, _, errOut := runCLI(t, "ls", mbase); code != 1 || mseen.Load() != "" || !strings.Contains(errOut, "?client-cert=PATH") {
		t.Errorf("mTLS server without a client certificate: exit %d, server saw %q\n%s", code, mseen.Load(), errOut)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a refused handshake was retried for %v", d)
	}
	if code, out, errOut := runCLI(t, "ls", mbase+"&client-cert="+clientPEM); code != 0 || mseen.Load() != "runferry-cli|" {
		t.Errorf("mTLS with client-cert: exit %d, server saw %q\n%s\n%s", code, mseen.Load(), out, errOut)
	}
}

// TestScrubListDerived: the values runferry scrubs from its output are
// those of the environment variables the adapters declare secret (plus
// their basic-auth encoding), with no hand-kept list: a new adapter's
// secret variable is scrubbed as soon as it is declared.
func TestScrubListDerived(t *testing.T) {
	descs := append(sourcesall.Sources().All(), sinksall.Sinks().All()...)
	env := location.SecretEnvVars(descs)
	for _, want := range []string{"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"} {
		if !slices.Contains(env, want) {
			t.Errorf("SecretEnvVars of the registries = %v, lacks %s", env, want)
		}
	}
	extra := location.Description{Scheme: "x", Options: []location.Option{
		{Name: "key", EnvVar: "NEWADAPTER_KEY", Secret: true, Help: "k"},
		{Name: "region", EnvVar: "NEWADAPTER_REGION", Help: "r"},
	}}
	environ := []string{"NEWADAPTER_KEY=key-value-1", "NEWADAPTER_REGION=region-value-1", "MLFLOW_TRACKING_TOKEN=tok-value-1",
		"MLFLOW_TRACKING_PASSWORD=pw-value-1", "MLFLOW_TRACKING_USERNAME=bob", "HOME=/home/value-1"}
	got := secretValues(append(descs, extra), environ, []string{"ls", "mlflow+https://carol@h/?username=dave"})
	for _, want := range []string{"key-value-1", "tok-value-1", "pw-value-1",
		base64.StdEncoding.EncodeToString([]byte("bob:pw-value-1")), base64.StdEncoding.EncodeToString([]byte("carol:pw-value-1")),
		base64.StdEncoding.EncodeToString([]byte("dave:pw-value-1"))} {
		if !slices.Contains(got, want) {
			t.Errorf("secretValues lacks %q: %q", want, got)
		}
	}
	for _, not := range []string{"region-value-1", "/home/value-1", "bob"} {
		if slices.Contains(got, not) {
			t.Errorf("secretValues scrubs %q, which no adapter declares secret", not)
		}
	}
	if got := secretValues(descs, environ, nil); slices.Contains(got, "key-value-1") {
		t.Errorf("a variable no registered adapter declares is scrubbed")
	}
}
