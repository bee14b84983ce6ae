package archive

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// MetadataEnv is the environment variable giving the object-storage
// option metadata when a location's query does not: RUNFERRY_METADATA=false
// keeps every archive in object storage from asking a cloud's instance
// metadata service for credentials.
const MetadataEnv = "RUNFERRY_METADATA"

// StoreOptionEnv names, for the options of StoreOptions read from the
// environment when the query lacks them, the variable read.
var StoreOptionEnv = map[string]string{"metadata": MetadataEnv}

// metadataAllowed reports whether an object store may ask its cloud's
// instance metadata service for credentials (AWS: the EC2 instance role at
// 169.254.169.254 or AWS_EC2_METADATA_SERVICE_ENDPOINT; Google: the
// metadata server, metadata.google.internal or GCE_METADATA_HOST; Azure: a
// managed identity, at 169.254.169.254 or IDENTITY_ENDPOINT). The
// location's metadata option decides, else RUNFERRY_METADATA, else it may
// (true, the clouds' own default: instance and pod roles keep working).
// Given false, credentials come only from what the environment and the
// local files name; none found is an error that says what was not asked.
func metadataAllowed(q url.Values, display string) (bool, error) {
	v, from := q.Get("metadata"), "option metadata"
	if !q.Has("metadata") {
		v, from = os.Getenv(MetadataEnv), MetadataEnv
	}
	if v == "" {
		return true, nil
	}
	ok, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %s=%q: want true or false", display, from, v)
	}
	return ok, nil
}

// notAsked is how messages name the metadata service left out.
const notAsked = "not asked: metadata=false"

// gcsLocalCredentials is, with metadata=false, the check before Google's
// Application Default Credentials are looked for: they must come from
// GOOGLE_APPLICATION_CREDENTIALS or gcloud's application-default login
// file, since ADC asks the metadata server when neither is there (and the
// Go libraries have no setting that forbids it).
func gcsLocalCredentials(display string) error {
	if os.Getenv("GOOGLE_APPLICATION_CREDENTIALS") != "" {
		return nil
	}
	dir := os.Getenv("CLOUDSDK_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "~"
		}
		dir = filepath.Join(home, ".config", "gcloud")
	}
	file := filepath.Join(dir, "application_default_credentials.json")
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	return fmt.Errorf("%s: no Google credentials found (searched: GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login %s; the metadata server %s)", display, file, notAsked)
}

// azureClientWithoutMetadata makes the container client for Azure's
// default credential with managed identity left out: the environment's
// service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID with a secret or a
// certificate), workload identity (AZURE_FEDERATED_TOKEN_FILE) and the
// Azure CLI's login, in that order, as DefaultAzureCredential tries them.
func azureClientWithoutMetadata(svc, containerName string) (*container.Client, error) {
	var chain []azcore.TokenCredential
	if c, err := azidentity.NewEnvironmentCredential(nil); err == nil {
		chain = append(chain, c)
	}
	if c, err := azidentity.NewWorkloadIdentityCredential(nil); err == nil {
		chain = append(chain, c)
	}
	if c, err := azidentity.NewAzureCLICredential(nil); err == nil {
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no Azure credential can be made here")
	}
	cred, err := azidentity.NewChainedTokenCredential(chain, nil)
	if err != nil {
		return nil, err
	}
	u, err := url.JoinPath(svc, containerName)
	if err != nil {
		return nil, err
	}
	return container.NewClient(u, cred, nil)
}

// azureDefaultCredential reports whether Azure's credential comes from
// DefaultAzureCredential: no AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY,
// no AZURE_STORAGE_SAS_TOKEN and no connection string, as gocloud.dev's
// azureblob.NewDefaultClient decides.
func azureDefaultCredential() bool {
	if os.Getenv("AZURE_STORAGE_ACCOUNT") != "" && os.Getenv("AZURE_STORAGE_KEY") != "" {
		return false
	}
	return os.Getenv("AZURE_STORAGE_SAS_TOKEN") == "" && os.Getenv("AZURE_STORAGE_CONNECTION_STRING") == "" &&
		os.Getenv("AZURE_STORAGEBLOB_CONNECTIONSTRING") == ""
}

// azureSearched names, for messages, where Azure's credentials were looked
// for.
func azureSearched(metadata bool) string {
	s := "AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_CONNECTION_STRING, the environment's service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, ...), workload identity, "
	if metadata {
		s += "managed identity, "
	} else {
		s += "managed identity (" + notAsked + "), "
	}
	return s + "the Azure CLI's login"
}

// azureCredentialError describes, on one line, an error of Azure's
// credential chain (DefaultAzureCredential, or the chain without managed
// identity): "no usable Azure credentials (searched: ...): EACH: WHY; ...",
// each credential's first line, without the SDK's separators and
// troubleshooting links. Empty if err is not such an error.
func azureCredentialError(err error) string {
	msg := err.Error()
	i := strings.Index(msg, "failed to acquire a token.")
	if i < 0 {
		return ""
	}
	var why []string
	for _, line := range strings.Split(msg[i:], "\n") {
		// Each credential's own line is indented by one tab; its details
		// (requests, responses, separators) by more.
		if strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "\t\t") {
			why = append(why, strings.TrimSpace(line))
		}
	}
	// A managed identity's answer (the status line of its response) is
	// what tells a refused or missing identity apart.
	for _, line := range strings.Split(msg[i:], "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "RESPONSE ") {
			why = append(why, "managed identity answered "+strings.TrimPrefix(t, "RESPONSE "))
			break
		}
	}
	return "no usable Azure credentials (searched: " + azureSearched(strings.Contains(msg, "DefaultAzureCredential")) + "): " + strings.Join(why, "; ")
}
