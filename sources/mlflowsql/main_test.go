package mlflowsql_test

import (
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
