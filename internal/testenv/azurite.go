package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// AzuriteVersion is the npm package of Azure's storage emulator the
// azblob:// tests run.
const AzuriteVersion = "azurite@3.37.0"

// Azurite's well-known development account (public, the same in every
// Azurite and in Microsoft's documentation).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteServer is Azure's storage emulator (its blob service) on
// 127.0.0.1 over a temporary folder.
type AzuriteServer struct {
	Host string // 127.0.0.1:PORT
	objectServer
	client *azblob.Client
}

// SharedAzurite returns one Azurite shared by every test of the binary,
// started on first use and stopped by Main (or by its watchdog if the
// binary dies), and sets the test's Azure environment to it (Env).
func SharedAzurite(t testing.TB) *AzuriteServer {
	t.Helper()
	bin := azuriteBin(t)
	s := sharedAzurite.get(t, func() (*AzuriteServer, error) { return startAzurite(bin) })
	s.Env(t)
	return s
}

// azuriteBin finds azurite-blob: $RUNFERRY_AZURITE, PATH, or the npm
// package installed into the user cache folder (by .ci/run, or here with
// npm from the npm registry, once).
func azuriteBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("RUNFERRY_AZURITE"); p != "" && isExecutable(p) {
		return p
	}
	cache, _ := os.UserCacheDir()
	dir := filepath.Join(cache, "runferry-test", strings.ReplaceAll(AzuriteVersion, "@", "-"))
	if p, ok := lookPath("azurite-blob", filepath.Join(dir, "node_modules", ".bin")); ok {
		return p
	}
	if _, err := exec.LookPath("npm"); err != nil {
		Unavailable(t, "Azurite (Azure storage emulator)", "install Node.js and npm, or set RUNFERRY_AZURITE")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", AzuriteVersion)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		Unavailable(t, "Azurite (Azure storage emulator)", fmt.Sprintf("npm install %s failed: %v: %s", AzuriteVersion, err, out))
	}
	return filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
}

func startAzurite(bin string) (*AzuriteServer, error) {
	o, port, err := newObjectServer("azurite")
	if err != nil {
		return nil, err
	}
	s := &AzuriteServer{Host: fmt.Sprintf("127.0.0.1:%d", port), objectServer: o}
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port), "--location", filepath.Join(s.Dir, "data"),
		"--skipApiVersionCheck", "--loose", "--silent")
	if err := s.start("azurite", cmd, s.Host, 60*time.Second); err != nil {
		return nil, err
	}
	conn := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://%s/%s;",
		azuriteAccount, azuriteKey, s.Host, azuriteAccount)
	s.client, err = azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Env sets the test's Azure storage environment to the emulator's
// development account.
func (s *AzuriteServer) Env(t testing.TB) {
	t.Helper()
	setEnv(t, map[string]string{
		"AZURE_STORAGE_ACCOUNT": azuriteAccount, "AZURE_STORAGE_KEY": azuriteKey,
		"AZURE_STORAGE_DOMAIN": s.Host, "AZURE_STORAGE_PROTOCOL": "http", "AZURE_STORAGE_IS_LOCAL_EMULATOR": "true",
		"AZURE_STORAGE_SAS_TOKEN": "", "AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGEBLOB_CONNECTIONSTRING": "",
	})
}

// CreateContainer creates a container with a fresh name starting with
// prefix and returns its name.
func (s *AzuriteServer) CreateContainer(t testing.TB, prefix string) string {
	t.Helper()
	name := freshName(prefix)
	if _, err := s.client.CreateContainer(context.Background(), name, nil); err != nil {
		t.Fatalf("testenv: creating container %s: %v", name, err)
	}
	return name
}

// Location returns the archive location of prefix in container.
func (s *AzuriteServer) Location(container, prefix string) string {
	return "azblob://" + container + "/" + strings.Trim(prefix, "/")
}
