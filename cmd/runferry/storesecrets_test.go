package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestObjectStoreSecretsScrubbed: the object stores' secret variables (the
// AWS secret key and session token, Azure's account key, SAS token,
// connection string and client secret), which no runferry option read but
// the clouds' credential chains do, are declared secret by the parquet:
// adapters, so their values never show in output: here an error that quotes
// a path holding the value prints *** instead. And such a secret given in a
// location's query is refused, naming the variable and not the value. Before
// ux7b's finding was fixed, the path was printed as given.
func TestObjectStoreSecretsScrubbed(t *testing.T) {
	for _, env := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
		"AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET"} {
		t.Run(env, func(t *testing.T) {
			secret := "sEcReT" + strings.ToLower(env[:5]) + "9f3a"
			t.Setenv(env, secret)
			missing := filepath.Join(t.TempDir(), "no-such-"+secret)
			code, out, errOut := runCLI(t, "copy", "--no-state", "wandb:"+missing, "parquet:"+filepath.Join(t.TempDir(), "a"))
			if code == 0 || !strings.Contains(out+errOut, "no-such-***") {
				t.Errorf("exit %d, want an error naming the path with the secret hidden:\n%s%s", code, out, errOut)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("the value of %s was printed:\n%s%s", env, out, errOut)
			}
			opt := strings.ReplaceAll(strings.ToLower(env), "_", "-")
			code, out, errOut = runCLI(t, "ls", "parquet:s3://bucket/x?"+opt+"=in-the-location-1")
			if code == 0 || !strings.Contains(errOut, "set "+env+" in the environment") || strings.Contains(out+errOut, "in-the-location-1") {
				t.Errorf("a secret in the location: exit %d, want it refused naming %s, value hidden:\n%s%s", code, env, out, errOut)
			}
		})
	}
}
