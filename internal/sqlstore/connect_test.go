package sqlstore

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestPostgresConnectErrorsSayTheReason: against a PostgreSQL server
// without TLS, libpq's default sslmode=prefer makes pgx try TLS first; a
// connection that then fails for another reason (here a database that
// does not exist) is told by that reason alone, not led by "tls error:
// server refused TLS connection", which reads as a TLS problem. A
// location naming no database is refused, not taken as the database
// named after the user.
func TestPostgresConnectErrorsSayTheReason(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	t.Setenv("PGDATABASE", "")
	os.Unsetenv("PGDATABASE")
	base := "postgres://postgres@127.0.0.1:" + strconv.Itoa(pg.Port)
	_, err := open(t, base+"/nosuch_db", ForWriting)
	if err == nil || !strings.Contains(err.Error(), `database "nosuch_db" does not exist`) || strings.Contains(err.Error(), "tls error") {
		t.Errorf("a database that does not exist: %v", err)
	}
	for _, loc := range []string{base, base + "/"} {
		_, err := open(t, loc, ForWriting)
		if err == nil || !strings.Contains(err.Error(), "name the database: postgres://USER@HOST[:PORT]/DATABASE") {
			t.Errorf("%s: %v", loc, err)
		}
	}
}
