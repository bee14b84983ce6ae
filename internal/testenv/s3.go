package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersityGWModule is the S3 server the object-storage tests run: versitygw
// (Apache-2.0), a Go module, serving a POSIX folder as S3 on 127.0.0.1.
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3Server is a real S3-compatible server (versitygw over a temporary
// folder) with one root account.
type S3Server struct {
	Endpoint     string // http://127.0.0.1:PORT
	AccessKey    string
	SecretKey    string
	Region       string
	objectServer // Dir: data/ is the folder it serves (one subfolder per bucket), iam/ its accounts
	client       *s3.Client
	bin          string
}

// SharedS3 returns one S3 server shared by every test of the binary,
// started on first use and stopped by Main (or, if the binary dies, by its
// watchdog). Tests sharing it use their own buckets (CreateBucket). It sets
// the AWS environment for the test (S3Server.Env).
func SharedS3(t testing.TB) *S3Server {
	t.Helper()
	bin := versityGW(t)
	s := sharedS3.get(t, func() (*S3Server, error) { return startS3(bin) })
	s.Env(t)
	return s
}

// versityGW finds the versitygw binary: $RUNFERRY_VERSITYGW, PATH, the Go
// bin folder (.ci/run installs it there), or a build into the user cache
// folder from the Go module proxy (a few minutes, once).
func versityGW(t testing.TB) string {
	t.Helper()
	return goTool(t, "versitygw (S3 server)", "versitygw", VersityGWModule, "RUNFERRY_VERSITYGW")
}

func startS3(bin string) (*S3Server, error) {
	o, port, err := newObjectServer("s3")
	if err != nil {
		return nil, err
	}
	var b [12]byte
	rand.Read(b[:])
	host := fmt.Sprintf("127.0.0.1:%d", port)
	s := &S3Server{Endpoint: "http://" + host, AccessKey: "runferrytest",
		SecretKey: hex.EncodeToString(b[:]), Region: "us-east-1", objectServer: o, bin: bin}
	for _, sub := range []string{"data", "iam"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, sub), 0o755); err != nil {
			os.RemoveAll(s.Dir)
			return nil, err
		}
	}
	cmd := exec.Command(bin, "--port", host, "--region", s.Region, "--iam-dir", filepath.Join(s.Dir, "iam"),
		"posix", filepath.Join(s.Dir, "data"))
	// The root account's keys through the environment, not the command
	// line (which ps shows).
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	if err := s.start("versitygw", cmd, host, 30*time.Second); err != nil {
		return nil, err
	}
	s.client = s3.New(s3.Options{Region: s.Region, BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")})
	return s, nil
}

// Env sets the AWS environment of the test to the server's root account,
// with every other source of AWS credentials and settings cut off
// (instance metadata, profiles, shared files).
func (s *S3Server) Env(t testing.TB) {
	t.Helper()
	setEnv(t, map[string]string{
		"AWS_ACCESS_KEY_ID": s.AccessKey, "AWS_SECRET_ACCESS_KEY": s.SecretKey, "AWS_SESSION_TOKEN": "",
		"AWS_REGION": s.Region, "AWS_DEFAULT_REGION": s.Region, "AWS_PROFILE": "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(s.Dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(s.Dir, "no-aws-credentials"),
	})
}

// CreateBucket creates a bucket with a fresh name starting with prefix and
// returns its name.
func (s *S3Server) CreateBucket(t testing.TB, prefix string) string {
	t.Helper()
	name := freshName(prefix)
	if _, err := s.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: creating bucket %s: %v", name, err)
	}
	return name
}

// Client returns an S3 client of the root account.
func (s *S3Server) Client() *s3.Client { return s.client }

// Location returns the archive location of prefix in bucket on this
// server: s3://BUCKET/PREFIX?endpoint=...&path-style=true.
func (s *S3Server) Location(bucket, prefix string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "path-style": {"true"}}
	return "s3://" + bucket + "/" + strings.Trim(prefix, "/") + "?" + q.Encode()
}

// CreateUser creates an account with role "user" (it may use the buckets
// it owns; see ChangeBucketOwner) and returns its secret key.
func (s *S3Server) CreateUser(t testing.TB, access string) string {
	t.Helper()
	var b [12]byte
	rand.Read(b[:])
	secret := hex.EncodeToString(b[:])
	s.admin(t, "create-user", "--access", access, "--secret", secret, "--role", "user")
	return secret
}

// ChangeBucketOwner makes the account with access key owner own bucket.
func (s *S3Server) ChangeBucketOwner(t testing.TB, bucket, owner string) {
	t.Helper()
	s.admin(t, "change-bucket-owner", "--bucket", bucket, "--owner", owner)
}

func (s *S3Server) admin(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"admin", "--endpoint-url", s.Endpoint}, args...)...)
	cmd.Env = append(os.Environ(), "ADMIN_ACCESS_KEY_ID="+s.AccessKey, "ADMIN_SECRET_ACCESS_KEY="+s.SecretKey)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: versitygw admin %s: %v\n%s", args[0], err, out)
	}
}
