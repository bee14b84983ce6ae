package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"golang.org/x/sync/errgroup"

	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"gocloud.dev/gcp"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// StoreOptions are the options an object-storage location takes in its
// query (s3://BUCKET/PREFIX?region=eu-west-1&...; gs:// takes endpoint
// only, azblob:// none; object-lock is S3's). Credentials are never among them: they come from
// the cloud's standard chain (for S3: the AWS_* environment variables, the
// shared config and credentials files with AWS_PROFILE or profile=,
// container and instance roles, IRSA; for GCS: Application Default
// Credentials; for Azure: its environment and managed identity).
var StoreOptions = []string{"region", "endpoint", "path-style", "sse", "kms-key-id", "storage-class", "profile", "object-lock", "metadata"}

// blobStore is an archive under a prefix of a bucket, through
// gocloud.dev/blob. Objects are written whole or not at all (a streamed
// multipart upload becomes visible when it completes); there is no rename,
// so Move is a server-side copy and a delete; journal records are objects
// of their own, created only if absent; locks are lock objects (see
// blobLock).
type blobStore struct {
	b       *blob.Bucket
	display string // scheme://bucket/prefix, for messages
	ctx     context.Context
	wopts   func(p string) *blob.WriterOptions // options of a write to p
	copts   func(to string) *blob.CopyOptions  // options of a copy to to
	// s3 is set for an S3 bucket, whose objects may be under Object Lock
	// retention (retainedUntil).
	s3 bool
	// s3c, s3Bucket and s3Prefix (the location's prefix, "" or ending in
	// "/") address the S3 bucket directly, for deletes (see removeKeys).
	s3c      *s3.Client
	s3Bucket string
	s3Prefix string
	// onUpload, when set (by tests), is called with the path of every
	// object about to be uploaded.
	onUpload func(p string)
}

// blobTimeout bounds one request to object storage, so that a server that
// stops answering fails the job instead of hanging it.
var blobTimeout = 5 * time.Minute

// reachTimeout bounds the first request to an object store, which proves
// it reachable: the GCS client retries a refused connection until its
// context ends, so an unreachable endpoint would hang the job.
var reachTimeout = 30 * time.Second

// openBlobStore opens location, s3://BUCKET[/PREFIX][?OPTIONS] (or gs://,
// azblob://CONTAINER), checking
// that the bucket is there and readable with the credentials found.
func openBlobStore(location string) (Store, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("archive location: %v", errors.Unwrap(err))
	}
	display := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	if u.User != nil {
		return nil, fmt.Errorf("%s: credentials do not belong in the location; they come from the environment (%s)", display, credentialSources[u.Scheme])
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: no bucket named (want %s://BUCKET/PREFIX)", display, u.Scheme)
	}
	q := u.Query()
	for k := range q {
		if !slices.Contains(StoreOptions, k) {
			return nil, fmt.Errorf("%s: unknown option %q (object storage takes %s)", display, k, strings.Join(StoreOptions, ", "))
		}
	}
	ctx := context.Background()
	var st *blobStore
	switch u.Scheme {
	case "s3":
		st, err = openS3(ctx, u.Host, q, display)
	case "azblob":
		st, err = openAzure(ctx, u.Host, q, display)
	case "gs":
		st, err = openGCS(ctx, u.Host, q, display)
	default:
		return nil, fmt.Errorf("%s: %s:// archives are not supported (s3://, gs:// and azblob:// are)", display, u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, reachTimeout)
	ok, err := st.b.IsAccessible(actx)
	timedOut := actx.Err() != nil
	cancel()
	if err != nil {
		st.b.Close()
		msg := describeBlobErr(err)
		if timedOut {
			msg += fmt.Sprintf(" (no answer within %s)", reachTimeout)
		}
		return nil, fmt.Errorf("%s: %s", display, msg)
	}
	if !ok {
		st.b.Close()
		if u.Scheme == "gs" {
			// gocloud.dev's GCS driver reports GCS's 403 on a bucket (one
			// the credentials may not see) as a missing bucket.
			return nil, fmt.Errorf("%s: bucket %q does not exist (or these credentials may not see it)", display, u.Host)
		}
		return nil, fmt.Errorf("%s: bucket %q does not exist", display, u.Host)
	}
	if prefix := strings.Trim(u.Path, "/"); prefix != "" {
		st.b = blob.PrefixedBucket(st.b, prefix+"/")
		st.s3Prefix = prefix + "/"
		if escapedKey(st.s3Prefix) {
			// gocloud.dev's S3 driver escapes the joined prefix and key:
			// deletes sent with s3Prefix+key as it is would miss the
			// objects (and S3 answers success), so they go through the
			// bucket too.
			st.s3c = nil
		}
	}
	return st, nil
}

func openS3(ctx context.Context, bucket string, q url.Values, display string) (*blobStore, error) {
	// The SDK's own log lines (such as "WARN falling back to IMDSv1"
	// while it looks for an instance role) would reach stderr in its own
	// format; what matters of them is in the errors returned.
	lopts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	metadata, err := metadataAllowed(q, display)
	if err != nil {
		return nil, err
	}
	if !metadata {
		lopts = append(lopts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if r := q.Get("region"); r != "" {
		lopts = append(lopts, config.WithRegion(r))
	}
	if p := q.Get("profile"); p != "" {
		lopts = append(lopts, config.WithSharedConfigProfile(p))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return nil, fmt.Errorf("%s: loading the AWS configuration: %v", display, err)
	}
	if err := s3Credentials(ctx, cfg, q.Get("profile"), metadata, display); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := q.Get("endpoint")
	pathStyle := false
	if v := q.Get("path-style"); v != "" {
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("%s: option path-style=%q: want true or false", display, v)
		}
	}
	if endpoint != "" {
		if !strings.Contains(endpoint, "://") {
			endpoint = "https://" + endpoint
		}
		// S3-compatible servers (MinIO, Ceph, versitygw, ...) may not
		// know the SDK's newest default checksums.
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
	})
	opts := &s3blob.Options{RequestChecksumCalculation: cfg.RequestChecksumCalculation}
	switch sse := q.Get("sse"); sse {
	case "":
	case "AES256", "aws:kms", "aws:kms:dsse":
		opts.EncryptionType = types.ServerSideEncryption(sse)
	default:
		return nil, fmt.Errorf("%s: option sse=%q: want AES256, aws:kms or aws:kms:dsse", display, sse)
	}
	if k := q.Get("kms-key-id"); k != "" {
		if opts.EncryptionType == "" {
			opts.EncryptionType = types.ServerSideEncryptionAwsKms
		}
		opts.KMSEncryptionID = k
	}
	b, err := s3blob.OpenBucket(ctx, client, bucket, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", display, err)
	}
	st := &blobStore{b: b, display: display, ctx: ctx, s3: true, s3c: client, s3Bucket: bucket}
	class := q.Get("storage-class")
	if class != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(class)) {
		b.Close()
		return nil, fmt.Errorf("%s: option storage-class=%q: want one of %v", display, class, types.StorageClass("").Values())
	}
	var lock *objectLock
	if v, ok := q["object-lock"]; ok {
		if lock, err = parseObjectLock(v[0]); err != nil {
			b.Close()
			return nil, fmt.Errorf("%s: option object-lock=%q: %v", display, v[0], err)
		}
	}
	st.wopts = func(p string) *blob.WriterOptions {
		o := &blob.WriterOptions{BufferSize: 8 << 20, MaxConcurrency: 4}
		retain := lock != nil && retained(p)
		if class != "" || retain {
			o.BeforeWrite = func(as func(any) bool) error {
				var in *transfermanager.UploadObjectInput
				if as(&in) {
					if class != "" {
						in.StorageClass = tmtypes.StorageClass(class)
					}
					if retain {
						in.ObjectLockMode = tmtypes.ObjectLockMode(lock.mode)
						in.ObjectLockRetainUntilDate = aws.Time(lock.until())
					}
				}
				return nil
			}
		}
		return o
	}
	st.copts = func(to string) *blob.CopyOptions {
		o := &blob.CopyOptions{}
		retain := lock != nil && retained(to)
		if class != "" || retain {
			o.BeforeCopy = func(as func(any) bool) error {
				var in *s3.CopyObjectInput
				if as(&in) {
					if class != "" {
						in.StorageClass = types.StorageClass(class)
					}
					if retain {
						in.ObjectLockMode = types.ObjectLockMode(lock.mode)
						in.ObjectLockRetainUntilDate = aws.Time(lock.until())
					}
				}
				return nil
			}
		}
		return o
	}
	return st, nil
}

// openAzure opens an Azure Blob Storage container. The account and its
// credentials come from Azure's own environment (AZURE_STORAGE_ACCOUNT with
// AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or
// AZURE_STORAGE_CONNECTION_STRING, else the default Azure credential:
// managed identity, workload identity, AZURE_CLIENT_ID/..., the Azure
// CLI's login), as do AZURE_STORAGE_DOMAIN, AZURE_STORAGE_PROTOCOL and
// AZURE_STORAGE_IS_LOCAL_EMULATOR (Azurite). S3's options do not apply.
func openAzure(ctx context.Context, containerName string, q url.Values, display string) (*blobStore, error) {
	for k := range q {
		if k != "metadata" {
			return nil, fmt.Errorf("%s: option %s applies to s3:// archives only", display, k)
		}
	}
	metadata, err := metadataAllowed(q, display)
	if err != nil {
		return nil, err
	}
	// The environment is read at each open, not once per process as
	// gocloud.dev's azblob:// URL opener does (a later open with changed
	// credentials would use the first ones).
	so := azureblob.NewDefaultServiceURLOptions()
	if so.AccountName == "" {
		return nil, fmt.Errorf("%s: no Azure storage account: set AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or a managed identity), or AZURE_STORAGE_CONNECTION_STRING", display)
	}
	svc, err := azureblob.NewServiceURL(so)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", display, oneLine(err))
	}
	var client *container.Client
	if !metadata && azureDefaultCredential() {
		client, err = azureClientWithoutMetadata(string(svc), containerName)
	} else {
		client, err = azureblob.NewDefaultClient(svc, azureblob.ContainerName(containerName))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s", display, describeBlobErr(err))
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", display, describeBlobErr(err))
	}
	st := &blobStore{b: b, display: display, ctx: ctx}
	st.copts = func(string) *blob.CopyOptions { return &blob.CopyOptions{} }
	st.wopts = func(string) *blob.WriterOptions { return &blob.WriterOptions{BufferSize: 8 << 20, MaxConcurrency: 4} }
	return st, nil
}

// credentialSources names, for messages, where each store's credentials
// come from.
var credentialSources = map[string]string{
	"s3":     "AWS_ACCESS_KEY_ID, AWS_PROFILE, ...",
	"gs":     "Google's Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, ...",
	"azblob": "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, a managed identity, ...",
}

// openGCS opens a Google Cloud Storage bucket. Credentials come from
// Google's Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
// gcloud's application-default login, the metadata server of GCE, GKE and
// Cloud Run). The one option is endpoint: an https:// URL is another
// endpoint of the JSON API (a regional or private one), with the same
// credentials; an http:// URL is an emulator (fake-gcs-server), sent no
// credentials. Without endpoint, STORAGE_EMULATOR_HOST (HOST:PORT), the
// variable Google's own client libraries read, names an emulator.
func openGCS(ctx context.Context, bucket string, q url.Values, display string) (*blobStore, error) {
	for k := range q {
		if k != "endpoint" && k != "metadata" {
			return nil, fmt.Errorf("%s: option %s applies to s3:// archives only (gs:// takes endpoint and metadata)", display, k)
		}
	}
	metadata, err := metadataAllowed(q, display)
	if err != nil {
		return nil, err
	}
	var client *gcp.HTTPClient
	var copts []option.ClientOption
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
			endpoint = h
			if !strings.Contains(endpoint, "://") {
				endpoint = "http://" + endpoint
			}
		}
	} else if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	if endpoint != "" {
		eu, err := url.Parse(endpoint)
		if err != nil || eu.Host == "" || (eu.Scheme != "http" && eu.Scheme != "https") || eu.User != nil {
			return nil, fmt.Errorf("%s: endpoint %q: want https://HOST[:PORT], or http://HOST:PORT for an emulator", display, endpoint)
		}
		copts = append(copts, option.WithEndpoint(strings.TrimSuffix(endpoint, "/")+"/storage/v1/"))
		if eu.Scheme == "http" {
			// An emulator: no credentials over plain HTTP.
			copts = append(copts, option.WithoutAuthentication(), option.WithHTTPClient(&http.Client{Transport: gcp.DefaultTransport()}))
		}
	}
	if endpoint == "" || strings.HasPrefix(endpoint, "https://") {
		if !metadata {
			if err := gcsLocalCredentials(display); err != nil {
				return nil, err
			}
		}
		creds, err := gcp.DefaultCredentials(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: no Google credentials (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or the metadata server): %s", display, oneLine(err))
		}
		if client, err = gcp.NewHTTPClient(gcp.DefaultTransport(), creds.TokenSource); err != nil {
			return nil, fmt.Errorf("%s: %v", display, err)
		}
		// Also when STORAGE_EMULATOR_HOST is set beside an https endpoint
		// (gcsblob would then send no credentials).
		copts = append(copts, option.WithHTTPClient(&client.Client))
	} else {
		// gcsblob wants an HTTP client even when the options above replace it.
		client = &gcp.HTTPClient{Client: http.Client{Transport: gcp.DefaultTransport()}}
	}
	// gcsblob and the storage client read STORAGE_EMULATOR_HOST too; the
	// options above come after theirs, so they decide.
	b, err := gcsblob.OpenBucket(ctx, client, bucket, &gcsblob.Options{ClientOptions: copts})
	if err != nil {
		return nil, fmt.Errorf("%s: %s", display, describeBlobErr(err))
	}
	st := &blobStore{b: b, display: display, ctx: ctx}
	st.copts = func(string) *blob.CopyOptions { return &blob.CopyOptions{} }
	st.wopts = func(string) *blob.WriterOptions { return &blob.WriterOptions{BufferSize: 8 << 20, MaxConcurrency: 4} }
	return st, nil
}

// oneLine returns err's message on one line.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// errCode is gcerrors.Code(err) where gocloud.dev's drivers keep the
// server's meaning, and PermissionDenied for a 401 or 403 where they lose
// it: gcsblob reports GCS's 403 as NotFound (a 403 may hide a missing
// object), which would take a denied write or read for a missing object
// and retry it or, worse, read an archive as absent; azureblob reports
// only AuthenticationFailed as PermissionDenied, not a 403 such as
// AuthorizationPermissionMismatch.
func errCode(err error) gcerrors.ErrorCode {
	var ge *googleapi.Error
	if errors.As(err, &ge) && (ge.Code == http.StatusForbidden || ge.Code == http.StatusUnauthorized) {
		return gcerrors.PermissionDenied
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized) {
		return gcerrors.PermissionDenied
	}
	return gcerrors.Code(err)
}

// describeBlobErr makes one line of an object-storage error: what the
// server said (its code and message: S3's error code and message, GCS's
// status, reason and message, Azure's status and error code), without
// request ids or URLs.
func describeBlobErr(err error) string {
	if s := unreached(err); s != "" {
		return s
	}
	if s := azureCredentialError(err); s != "" {
		return s
	}
	what := ""
	switch errCode(err) {
	case gcerrors.PermissionDenied:
		what = "access denied"
	case gcerrors.NotFound:
		what = "not found"
	case gcerrors.FailedPrecondition:
		what = "precondition failed"
	}
	said := serverSaid(err)
	switch {
	case what != "" && said != "":
		return what + " (" + said + ")"
	case said != "":
		return said
	case what != "":
		return what
	}
	s := oneLine(err)
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 300 {
		s = s[i+2:]
	}
	return s
}

// unreached describes, on one line, the error of a request that got no
// answer from the object store (a refused connection, a host name that
// does not resolve, a timeout), as the MLflow and W&B sources do: "cannot
// reach ENDPOINT (N attempts): WHY", the endpoint being the scheme and
// host the request went to (never its path or query, which may hold a
// signature). Empty if err is not such an error.
func unreached(err error) string {
	var op *net.OpError
	var dns *net.DNSError
	var why string
	switch {
	case errors.As(err, &dns):
		why = dns.Error()
	case errors.As(err, &op):
		why = op.Error()
	default:
		return ""
	}
	where := "the object store"
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			where = u.Scheme + "://" + u.Host
		}
	}
	var ma *awsretry.MaxAttemptsError
	if errors.As(err, &ma) {
		where += fmt.Sprintf(" (%d attempts)", ma.Attempt)
	}
	return "cannot reach " + where + ": " + oneLine(errors.New(why))
}

// serverSaid returns, on one line, what the object store's answer in err
// says (empty if err holds none).
func serverSaid(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorCode()
		if m := ae.ErrorMessage(); m != "" && m != msg {
			msg += ": " + m
		}
		return oneLine(errors.New(msg))
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		msg := strconv.Itoa(ge.Code)
		if len(ge.Errors) > 0 && ge.Errors[0].Reason != "" {
			msg += " " + ge.Errors[0].Reason
		}
		if ge.Message != "" {
			msg += ": " + ge.Message
		}
		return oneLine(errors.New(msg))
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		msg := strconv.Itoa(re.StatusCode)
		if re.ErrorCode != "" {
			msg += " " + re.ErrorCode
		}
		return msg
	}
	return ""
}

// fail wraps err from an operation on p: a missing object wraps
// fs.ErrNotExist, an existing one fs.ErrExist.
func (s *blobStore) fail(op, p string, err error) error {
	switch errCode(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("%s %s: %w", op, s.Name(p), fs.ErrNotExist)
	case gcerrors.FailedPrecondition:
		return fmt.Errorf("%s %s: %w", op, s.Name(p), fs.ErrExist)
	case gcerrors.PermissionDenied:
		return fmt.Errorf("%s %s: %w", op, s.Name(p), deniedError{describeBlobErr(err)})
	}
	return fmt.Errorf("%s %s: %s", op, s.Name(p), describeBlobErr(err))
}

func (s *blobStore) Name(p string) string {
	if p == "" {
		return s.display
	}
	return s.display + "/" + p
}

func (s *blobStore) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, blobTimeout)
}

// blobFile is an open object. Read streams it, keeping a copy as it goes
// (in memory up to smallObject bytes, else in a local spill file), so that
// ReadAt after Read is served from the copy and every object is fetched
// once: the archive's readers read each data file whole to check its
// SHA-256, then parse it. ReadAt before any Read fetches only the range
// asked for (a Parquet reader's footer first, then the pages it needs).
type blobFile struct {
	s     *blobStore
	p     string
	size  int64
	body  *blob.Reader // opened by the first Read
	spool spool
	got   int64 // bytes read from body (and spooled)
}

// spool is where blobFile keeps what Read fetched.
type spool interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// memSpool is a spool in memory, for small objects.
type memSpool struct{ b []byte }

func (m *memSpool) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memSpool) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memSpool) Close() error { m.b = nil; return nil }

func (s *blobStore) Open(p string) (ReadAtFile, error) {
	ctx, cancel := s.op()
	defer cancel()
	a, err := s.b.Attributes(ctx, p)
	if err != nil {
		return nil, s.fail("opening", p, err)
	}
	return &blobFile{s: s, p: p, size: a.Size}, nil
}

func (f *blobFile) Size() int64 { return f.size }

func (f *blobFile) Read(b []byte) (int, error) {
	if f.body == nil {
		r, err := f.s.b.NewReader(f.s.ctx, f.p, nil)
		if err != nil {
			return 0, f.s.fail("opening", f.p, err)
		}
		f.body = r
	}
	n, err := f.body.Read(b)
	if n > 0 {
		if f.spool == nil {
			sp, serr := f.newSpool()
			if serr != nil {
				return 0, serr
			}
			f.spool = sp
		}
		if _, werr := f.spool.WriteAt(b[:n], f.got); werr != nil {
			return n, werr
		}
		f.got += int64(n)
	}
	if err != nil && err != io.EOF {
		err = f.s.fail("reading", f.p, err)
	}
	return n, err
}

func (f *blobFile) newSpool() (spool, error) {
	if f.size <= smallObject {
		return &memSpool{b: make([]byte, 0, f.size)}, nil
	}
	if err := os.MkdirAll(f.s.SpillDir(), dirMode); err != nil {
		return nil, err
	}
	sp, err := createTemp(f.s.SpillDir(), "read-", tmpSuffix)
	if err != nil {
		return nil, err
	}
	os.Remove(sp.Name()) // held open; gone when closed
	return sp, nil
}

// ReadAt fetches the range asked for when nothing was read yet; once Read
// has begun, it reads the rest of the object first, then serves the copy.
func (f *blobFile) ReadAt(b []byte, off int64) (int, error) {
	if f.body == nil {
		return f.readRange(b, off)
	}
	if f.got < f.size {
		if _, err := io.Copy(io.Discard, readerOnly{f}); err != nil {
			return 0, err
		}
	}
	if f.spool == nil {
		return 0, io.EOF
	}
	return f.spool.ReadAt(b, off)
}

// readRange reads len(b) bytes at off with one ranged request.
func (f *blobFile) readRange(b []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	want := min(int64(len(b)), f.size-off)
	ctx, cancel := f.s.op()
	defer cancel()
	r, err := f.s.b.NewRangeReader(ctx, f.p, off, want, nil)
	if err != nil {
		return 0, f.s.fail("reading", f.p, err)
	}
	defer r.Close()
	n, err := io.ReadFull(r, b[:want])
	if err != nil {
		return n, f.s.fail("reading", f.p, err)
	}
	if want < int64(len(b)) {
		return n, io.EOF
	}
	return n, nil
}

type readerOnly struct{ io.Reader }

func (f *blobFile) Close() error {
	var err error
	if f.body != nil {
		err = f.body.Close()
	}
	if f.spool != nil {
		f.spool.Close()
	}
	return err
}

func (s *blobStore) ReadFile(p string) ([]byte, error) {
	ctx, cancel := s.op()
	defer cancel()
	data, err := s.b.ReadAll(ctx, p)
	if err != nil {
		return nil, s.fail("reading", p, err)
	}
	return data, nil
}

func (s *blobStore) Stat(p string) (ObjectInfo, error) {
	ctx, cancel := s.op()
	defer cancel()
	a, err := s.b.Attributes(ctx, p)
	if err != nil {
		return ObjectInfo{}, s.fail("stat", p, err)
	}
	return ObjectInfo{Size: a.Size, ModTime: a.ModTime, Version: a.ETag + "/" + a.ModTime.String() + "/" + strconv.FormatInt(a.Size, 10)}, nil
}

// blobWriter holds what is written up to smallObject bytes and uploads it
// with one request at Commit (retried like WriteFile); past that it
// streams a multipart upload (parts of 8 MiB, four in flight), so memory
// stays bounded whatever the size.
type blobWriter struct {
	s      *blobStore
	p      string
	buf    []byte
	w      *io.PipeWriter // into the running upload, once the object is large
	cancel context.CancelFunc
	fin    chan struct{} // closed when the upload has returned
	err    error         // the upload's error, set before fin closes
	done   bool
}

// smallObject is the size up to which an object is uploaded whole.
const smallObject = 4 << 20

// hashesFirst marks object storage for putBlob (see hashFirst).
func (s *blobStore) hashesFirst() {}

func (s *blobStore) Create(p string) (ObjectWriter, error) {
	return &blobWriter{s: s, p: p}, nil
}

// start begins the streamed upload of a large object: Bucket.Upload (the
// driver's Upload call, multipart with parallel parts) reading from a pipe
// that Write feeds. Not Bucket.NewWriter's Write and Close: gocloud.dev's
// azureblob writer (v0.47.0) panics in Close when that upload failed.
func (w *blobWriter) start() {
	ctx, cancel := context.WithCancel(w.s.ctx)
	pr, pw := io.Pipe()
	w.w, w.cancel, w.fin = pw, cancel, make(chan struct{})
	o := w.s.wopts(w.p)
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	if w.s.onUpload != nil {
		w.s.onUpload(w.p)
	}
	go func() {
		defer close(w.fin)
		w.err = w.s.b.Upload(ctx, w.p, pr, o)
		if w.err != nil {
			pr.CloseWithError(w.err)
		} else {
			pr.Close()
		}
	}()
}

func (w *blobWriter) Write(b []byte) (int, error) {
	if w.w == nil && len(w.buf)+len(b) <= smallObject {
		w.buf = append(w.buf, b...)
		return len(b), nil
	}
	if w.w == nil {
		w.start()
		if _, err := w.w.Write(w.buf); err != nil {
			return 0, w.s.fail("writing", w.p, err)
		}
		w.buf = nil
	}
	n, err := w.w.Write(b)
	if err != nil {
		err = w.s.fail("writing", w.p, err)
	}
	return n, err
}

func (w *blobWriter) Commit() error {
	if w.done {
		return errors.New("file already committed or aborted")
	}
	w.done = true
	if w.w == nil {
		return w.s.WriteFile(w.p, w.buf)
	}
	defer w.cancel()
	w.w.Close()
	<-w.fin
	if w.err != nil {
		return w.s.fail("writing", w.p, w.err)
	}
	return nil
}

func (w *blobWriter) Abort() {
	if !w.done {
		w.done = true
		if w.w != nil {
			w.cancel() // a cancelled upload leaves no object
			w.w.CloseWithError(context.Canceled)
			<-w.fin
		}
	}
}

// retry runs f again when it fails in a way that a retry may cure: a
// server with a file-system backend (versitygw, MinIO on a folder) may
// refuse a write into a folder that a concurrent delete is removing as
// empty ("ExistingObjectIsDirectory", "conflict"). The SDK itself retries
// throttling and server errors.
func retry(f func() error) error {
	var err error
	for attempt := range 6 {
		if err = f(); err == nil || !transient(err) {
			return err
		}
		time.Sleep(time.Duration(10<<attempt) * time.Millisecond)
	}
	return err
}

func transient(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ExistingObjectIsDirectory", "ObjectParentIsFile", "OperationAborted":
			return true
		}
	}
	return false
}

func (s *blobStore) WriteFile(p string, data []byte) error {
	ctx, cancel := s.op()
	defer cancel()
	if err := retry(func() error { return s.put(ctx, p, data, s.wopts(p)) }); err != nil {
		return s.fail("writing", p, err)
	}
	return nil
}

// put writes data to p in one upload (Bucket.Upload, the driver's Upload
// call), not through Bucket.WriteAll's Write and Close: gocloud.dev's
// azureblob writer (v0.47.0) dereferences a nil pipe in Close when the
// upload behind Write failed, so a refused conditional write (the object
// exists) panicked instead of returning the precondition error.
func (s *blobStore) put(ctx context.Context, p string, data []byte, o *blob.WriterOptions) error {
	return s.putFrom(ctx, p, bytes.NewReader(data), o)
}

// putFrom is put reading from r: the driver uploads a large object in
// parts (a multipart upload, with o's conditions on the whole object),
// holding a few parts at a time.
func (s *blobStore) putFrom(ctx context.Context, p string, r io.Reader, o *blob.WriterOptions) error {
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	if s.onUpload != nil {
		s.onUpload(p)
	}
	return s.b.Upload(ctx, p, r, o)
}

func (s *blobStore) CreateExclusive(p string, data []byte) error {
	return s.CreateExclusiveFrom(p, bytes.NewReader(data), int64(len(data)))
}

func (s *blobStore) CreateExclusiveFrom(p string, r io.ReaderAt, size int64) error {
	ctx, cancel := s.op()
	defer cancel()
	o := s.wopts(p)
	o.IfNotExist = true
	if err := retry(func() error { return s.putFrom(ctx, p, io.NewSectionReader(r, 0, size), o) }); err != nil {
		return s.fail("creating", p, err)
	}
	return nil
}

func (s *blobStore) WriteFileFrom(p string, r io.ReaderAt, size int64) error {
	ctx, cancel := s.op()
	defer cancel()
	if err := retry(func() error { return s.putFrom(ctx, p, io.NewSectionReader(r, 0, size), s.wopts(p)) }); err != nil {
		return s.fail("writing", p, err)
	}
	return nil
}

// copyLimit is the largest object a server-side copy takes (S3's
// CopyObject: 5 GiB); a larger one is moved by streaming it through.
var copyLimit int64 = 5 << 30

func (s *blobStore) Move(from, to string) error {
	ctx, cancel := s.op()
	defer cancel()
	err := retry(func() error { return s.b.Copy(ctx, to, from, s.copts(to)) })
	if err != nil && errCode(err) != gcerrors.NotFound {
		if fi, serr := s.Stat(from); serr == nil && fi.Size > copyLimit {
			err = s.streamCopy(from, to)
		}
	}
	if err != nil {
		if errCode(err) == gcerrors.NotFound {
			if _, serr := s.Stat(to); serr == nil {
				return nil
			}
		}
		return s.fail("copying to "+s.Name(to)+" from", from, err)
	}
	return s.removeKeys(from)
}

// streamCopy copies from to to through this process (a multipart upload,
// bounded memory), for objects too large for a server-side copy.
func (s *blobStore) streamCopy(from, to string) error {
	r, err := s.b.NewReader(s.ctx, from, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := s.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

func (s *blobStore) Remove(p string) error {
	ctx, cancel := s.op()
	defer cancel()
	if err := s.b.Delete(ctx, p); err != nil {
		return s.fail("deleting", p, err)
	}
	return nil
}

func (s *blobStore) RemoveAll(dir string) error {
	var keys []string
	if err := s.Walk(dir, func(p string, _ int64) error { keys = append(keys, p); return nil }); err != nil {
		return err
	}
	return s.removeKeys(keys...)
}

// deleteBatch is the most keys one S3 DeleteObjects request takes.
const deleteBatch = 1000

// removeKeys deletes the objects at keys; a missing one is not an error.
// Bucket.Delete would first ask for each object's attributes (S3 answers
// a delete of a missing key with success, so gocloud.dev's S3 driver sends
// a HEAD to report it as missing): on S3 removeKeys sends one DeleteObject
// for one key, one DeleteObjects for up to deleteBatch, and no HEAD.
// Elsewhere (GCS, Azure: their delete reports a missing object itself) it
// deletes each key through the bucket.
func (s *blobStore) removeKeys(keys ...string) error {
	var g errgroup.Group
	g.SetLimit(moveConcurrency)
	for len(keys) > 0 {
		n := min(len(keys), deleteBatch)
		batch := keys[:n]
		keys = keys[n:]
		if s.s3c != nil && !slices.ContainsFunc(batch, escapedKey) {
			g.Go(func() error { return s.s3Delete(batch) })
			continue
		}
		for _, k := range batch {
			g.Go(func() error {
				ctx, cancel := s.op()
				defer cancel()
				if err := s.b.Delete(ctx, k); err != nil && errCode(err) != gcerrors.NotFound {
					return s.fail("deleting", k, err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

// escapedKey reports whether gocloud.dev's S3 driver would store key under
// another name (it hex-escapes control characters, the slash of "../" and
// anything that reads as its escapes), which s3Delete does not: such keys
// go through the bucket. runferry's own keys never are.
func escapedKey(key string) bool {
	return strings.Contains(key, "../") || strings.Contains(key, "__") ||
		strings.ContainsFunc(key, func(r rune) bool { return r < 32 || r >= 0x7f })
}

// s3Delete deletes keys (at most deleteBatch) with the S3 client itself.
func (s *blobStore) s3Delete(keys []string) error {
	ctx, cancel := s.op()
	defer cancel()
	if len(keys) == 1 {
		_, err := s.s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.s3Bucket), Key: aws.String(s.s3Prefix + keys[0])})
		if err != nil && s3ErrCode(err) != gcerrors.NotFound {
			return s.failS3("deleting", keys[0], err)
		}
		return nil
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objs[i] = types.ObjectIdentifier{Key: aws.String(s.s3Prefix + k)}
	}
	out, err := s.s3c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.s3Bucket),
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented" {
		// An S3-compatible store without multi-object delete: one
		// DeleteObject a key.
		cancel()
		for _, k := range keys {
			if err := s.s3Delete([]string{k}); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return s.failS3("deleting", keys[0], err)
	}
	for _, e := range out.Errors {
		code := aws.ToString(e.Code)
		if code == "NoSuchKey" {
			continue
		}
		k := strings.TrimPrefix(aws.ToString(e.Key), s.s3Prefix)
		err := &smithy.GenericAPIError{Code: code, Message: aws.ToString(e.Message)}
		return s.failS3("deleting", k, err)
	}
	return nil
}

// s3ErrCode is the gcerrors code of an error of the S3 client itself, as
// gocloud.dev's S3 driver maps it.
func s3ErrCode(err error) gcerrors.ErrorCode {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	} else if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return gcerrors.NotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			return gcerrors.PermissionDenied
		}
	}
	switch code {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return gcerrors.NotFound
	case "AccessDenied", "Forbidden":
		return gcerrors.PermissionDenied
	}
	return gcerrors.Unknown
}

// failS3 is fail for an error of the S3 client itself.
func (s *blobStore) failS3(op, p string, err error) error {
	switch s3ErrCode(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("%s %s: %w", op, s.Name(p), fs.ErrNotExist)
	case gcerrors.PermissionDenied:
		return fmt.Errorf("%s %s: %w", op, s.Name(p), deniedError{describeBlobErr(err)})
	}
	return fmt.Errorf("%s %s: %s", op, s.Name(p), describeBlobErr(err))
}

func (s *blobStore) Walk(dir string, fn func(p string, size int64) error) error {
	it := s.b.List(&blob.ListOptions{Prefix: dir + "/"})
	for {
		ctx, cancel := s.op()
		obj, err := it.Next(ctx)
		cancel()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.fail("listing", dir, err)
		}
		if obj.IsDir {
			continue
		}
		if err := fn(obj.Key, obj.Size); err != nil {
			return err
		}
	}
}

// list returns the names directly under dir ("" for the root).
func (s *blobStore) list(dir string) ([]string, error) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	it := s.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	var out []string
	for {
		ctx, cancel := s.op()
		obj, err := it.Next(ctx)
		cancel()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, s.fail("listing", dir, err)
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/"))
	}
}

func (s *blobStore) Top() ([]string, error) { return s.list("") }

func (s *blobStore) SyncDir(string) error { return nil }

// Journal records in object storage: journal/<jn>/<record number,
// 8 digits>.jsonl, each created only if absent, so two writers never
// both append record k.
func journalDirOf(jn int64) string { return path.Join(journalDir, fmt.Sprintf("%06d", jn)) }

func (s *blobStore) ReadJournal(jn, from int64) ([]JournalChunk, error) {
	names, err := s.list(journalDirOf(jn))
	if err != nil {
		return nil, err
	}
	var nums []int64
	for _, n := range names {
		k, err := strconv.ParseInt(strings.TrimSuffix(n, ".jsonl"), 10, 64)
		if err == nil && k >= from {
			nums = append(nums, k)
		}
	}
	slices.Sort(nums)
	var out []JournalChunk
	for i, k := range nums {
		if k != from+int64(i) {
			break // a gap: records after it are not committed in order
		}
		p := path.Join(journalDirOf(jn), fmt.Sprintf("%08d.jsonl", k))
		data, err := s.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, JournalChunk{Line: string(data), End: k + 1})
	}
	return out, nil
}

func (s *blobStore) AppendJournal(jn, at int64, line []byte) (int64, error) {
	p := path.Join(journalDirOf(jn), fmt.Sprintf("%08d.jsonl", at))
	if err := s.CreateExclusive(p, line); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("%s: another writer committed this journal record meanwhile (its commit lock expired?); run again", s.Name(p))
		}
		return 0, err
	}
	return at + 1, nil
}

func (s *blobStore) Journals() ([]int64, error) {
	names, err := s.list(journalDir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, n := range names {
		if k, err := strconv.ParseInt(n, 10, 64); err == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

func (s *blobStore) RemoveJournal(jn int64) error { return s.RemoveAll(journalDirOf(jn)) }

// SpillDir is runferry-spill under the system's temporary folder. It
// writes nothing, so writers of many runs may call it at once.
func (s *blobStore) SpillDir() string {
	return filepath.Join(os.TempDir(), "runferry-spill")
}

func (s *blobStore) Close() error { return s.b.Close() }

// LockTTL is how long a lock object in object storage stays valid without
// being renewed; its holder renews it every LockTTL/4. A writer killed
// while holding a lock blocks others until it expires. Expiry is judged by
// the object's time as the server recorded it against the local clock, so
// clocks must agree to well within LockTTL.
var LockTTL = 2 * time.Minute

// blobLock is a shared/exclusive lock made of objects: the exclusive
// holder's object is NAME (created only if absent), each shared holder's
// is NAME.shared/<holder id>. To take it exclusively a writer creates NAME
// and then finds no live shared object but its own; to take it shared, it
// writes its object and then finds no live NAME but its own. Object
// storage is strongly consistent (read after write), so of two writers
// doing this at once at least one sees the other and backs off.
type blobLock struct {
	s    *blobStore
	name string
	id   string
	// exclusiveOnly is set for a lock that no writer takes shared (the
	// commit lock: Writer.locked takes it exclusively, and so did every
	// earlier version): no NAME.shared/ object can be in the way, so an
	// exclusive try does not list them (one request less a commit).
	exclusiveOnly bool

	mu        sync.Mutex
	exclusive bool // holds NAME
	shared    bool // holds NAME.shared/<id>
	stop      chan struct{}
	// expires is when the latest of the live lock objects that kept the
	// last try from taking the lock expires unless renewed (zero if none
	// was seen).
	expires time.Time
}

type lockBody struct {
	Holder string `json:"holder"`
	Host   string `json:"host"`
	PID    int    `json:"pid"`
}

func (s *blobStore) Lock(name string) (StoreLock, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &blobLock{s: s, name: name, id: hex.EncodeToString(b[:]), exclusiveOnly: name == commitLockFile}, nil
}

func (l *blobLock) body() []byte {
	host, _ := os.Hostname()
	data, _ := json.Marshal(lockBody{Holder: l.id, Host: host, PID: os.Getpid()})
	return data
}

func (l *blobLock) sharedPath() string { return l.name + ".shared/" + l.id }

// live reports whether the lock object at p is held: present and renewed
// within LockTTL. An expired one is deleted.
func (l *blobLock) live(p string) (bool, error) {
	fi, err := l.s.Stat(p)
	if notExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if time.Since(fi.ModTime) > LockTTL {
		l.s.removeKeys(p)
		return false, nil
	}
	if e := fi.ModTime.Add(LockTTL); e.After(l.expires) {
		l.expires = e
	}
	return true, nil
}

// The pause between a waiting writer's tries for a lock object starts at
// lockPauseFirst and doubles up to lockPauseMax (each with jitter), and
// never reaches past the moment the lock objects in the way expire unless
// renewed: a writer waiting out a killed writer's lock (up to LockTTL)
// sends a few dozen requests, not thousands, and tries again as soon as
// that lock is broken.
var (
	lockPauseFirst = 20 * time.Millisecond
	lockPauseMax   = 4 * time.Second
)

// lockPause returns how long to wait before the next try, given the pause
// before the jitter (*pause, doubled for the next time) and when the lock
// objects in the way expire (zero if none was live: the pause starts
// again from lockPauseFirst). A live holder that drops the lock is seen at
// the next try, at most lockPauseMax later.
func lockPause(pause *time.Duration, expires time.Time) time.Duration {
	if expires.IsZero() {
		// Nothing live was in the way (a lock object just broken as
		// expired, or dropped between two requests): try again soon.
		*pause = lockPauseFirst
	}
	var b [2]byte
	rand.Read(b[:])
	// Between half and all of the pause, so that waiters spread out.
	d := *pause/2 + time.Duration(int64(*pause/2)*int64(int(b[0])<<8|int(b[1]))>>16)
	*pause = min(*pause*2, lockPauseMax)
	if !expires.IsZero() {
		// Just past the expiry (live judges by the server's time of the
		// object, as this does), so that the next try breaks the lock.
		if until := time.Until(expires) + 10*time.Millisecond; until < d {
			d = max(until, time.Millisecond)
		}
	}
	return d
}

func (l *blobLock) Take(exclusive, wait bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := time.Now()
	next := start.Add(time.Second)
	pause := lockPauseFirst
	for {
		l.expires = time.Time{}
		ok, err := l.try(exclusive)
		if err != nil {
			return fmt.Errorf("locking %s: %w", l.s.Name(l.name), err)
		}
		if ok {
			l.renew()
			return nil
		}
		if !wait {
			return errNotLocked
		}
		next = l.tellWaiting(start, next)
		time.Sleep(lockPause(&pause, l.expires))
	}
}

func (l *blobLock) try(exclusive bool) (bool, error) {
	if !exclusive && l.exclusiveOnly {
		return false, fmt.Errorf("%s is taken exclusively only", l.s.Name(l.name))
	}
	if exclusive {
		if !l.exclusive {
			err := l.s.CreateExclusive(l.name, l.body())
			if errors.Is(err, fs.ErrExist) {
				if live, lerr := l.live(l.name); lerr != nil || live {
					return false, lerr
				}
				return false, nil // expired and removed: try again
			}
			if err != nil {
				return false, err
			}
			l.exclusive = true
		}
		if l.exclusiveOnly {
			return true, nil
		}
		others := false
		err := l.s.Walk(l.name+".shared", func(p string, _ int64) error {
			if p == l.sharedPath() || others {
				return nil
			}
			live, err := l.live(p)
			others = others || live
			return err
		})
		if err != nil || others {
			l.s.removeKeys(l.name)
			l.exclusive = false
			return false, err
		}
		if l.shared {
			l.s.removeKeys(l.sharedPath())
			l.shared = false
		}
		return true, nil
	}
	if err := l.s.WriteFile(l.sharedPath(), l.body()); err != nil {
		return false, err
	}
	l.shared = true
	if l.exclusive {
		l.s.removeKeys(l.name)
		l.exclusive = false
		return true, nil
	}
	live, err := l.live(l.name)
	if err != nil || live {
		l.s.removeKeys(l.sharedPath())
		l.shared = false
		return false, err
	}
	return true, nil
}

// renew starts rewriting the held lock objects every LockTTL/4. The caller
// holds l.mu.
func (l *blobLock) renew() {
	if l.stop != nil {
		return
	}
	stop := make(chan struct{})
	l.stop = stop
	go func() {
		t := time.NewTicker(LockTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			l.mu.Lock()
			if l.exclusive {
				l.s.WriteFile(l.name, l.body())
			}
			if l.shared {
				l.s.WriteFile(l.sharedPath(), l.body())
			}
			l.mu.Unlock()
		}
	}()
}

func (l *blobLock) Drop() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		l.stop = nil
	}
	var err error
	if l.exclusive {
		if rerr := l.s.removeKeys(l.name); rerr != nil {
			err = rerr
		}
		l.exclusive = false
	}
	if l.shared {
		if rerr := l.s.removeKeys(l.sharedPath()); rerr != nil && err == nil {
			err = rerr
		}
		l.shared = false
	}
	return err
}

func (l *blobLock) Close() error { return l.Drop() }

// deniedError is ErrDenied with the server's word for it.
type deniedError struct{ msg string }

func (e deniedError) Error() string        { return e.msg }
func (e deniedError) Is(target error) bool { return target == ErrDenied }

// s3Credentials looks for the AWS credentials at the archive's open, so
// that none found is one line naming where they were looked for, not the
// SDK's chain of wrapped errors at the first request ("operation error S3:
// ListObjectsV2, get identity: get credentials: failed to refresh cached
// credentials, no EC2 IMDS role found, ..."). Credentials that were found
// but could not be used (an expired SSO token, a role that cannot be
// assumed) keep the SDK's words.
func s3Credentials(ctx context.Context, cfg aws.Config, profile string, metadata bool, display string) error {
	searched := "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the shared config and credentials files (~/.aws/config, ~/.aws/credentials"
	if profile != "" {
		searched += ", profile " + profile
	} else if p := os.Getenv("AWS_PROFILE"); p != "" {
		searched += ", profile " + p
	}
	searched += "), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container role, the EC2 instance role"
	if !metadata {
		searched += " (" + notAsked + ")"
	}
	if cfg.Credentials == nil {
		return fmt.Errorf("%s: no AWS credentials found (searched: %s)", display, searched)
	}
	_, err := cfg.Credentials.Retrieve(ctx)
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "no EC2 IMDS role found") || strings.Contains(err.Error(), "EC2 IMDS") && strings.Contains(err.Error(), "failed") ||
		!metadata && strings.Contains(err.Error(), "access disabled to EC2 IMDS"):
		return fmt.Errorf("%s: no AWS credentials found (searched: %s)", display, searched)
	}
	return fmt.Errorf("%s: getting AWS credentials: %v", display, err)
}
