package sqlstore

import "github.com/runferry/runferry/internal/location"

// PostgresOptions are the location options of PostgreSQL locations:
// the password (from the environment only) and the connection settings
// passed to the driver.
func PostgresOptions() []location.Option {
	return []location.Option{
		{Name: "password", EnvVar: PostgresPasswordEnv, Secret: true,
			Help: "The user's password, read only from the environment (PGPASSWORD); a password in the location is refused."},
		{Name: "sslmode", Default: "prefer", Help: "TLS mode, as libpq's sslmode: disable, allow, prefer, require, verify-ca or verify-full."},
		{Name: "sslrootcert", Help: "CA certificate file for sslmode=verify-ca or verify-full."},
		{Name: "connect_timeout", Help: "Seconds to wait for a connection."},
		{Name: "search_path", Help: "The PostgreSQL schema (namespace) holding runferry's tables; default the user's search_path (public)."},
		{Name: "application_name", Default: "", Help: "Name shown in pg_stat_activity."},
	}
}

// MySQLOptions are the location options of MySQL and MariaDB locations.
func MySQLOptions() []location.Option {
	return []location.Option{
		{Name: "password", EnvVar: MySQLPasswordEnv, Secret: true,
			Help: "The user's password, read only from the environment (MYSQL_PWD); a password in the location is refused."},
		{Name: "tls", Default: "false", Help: "TLS: false, true, skip-verify or preferred (go-sql-driver/mysql's tls option)."},
	}
}
