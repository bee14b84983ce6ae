-- runferry archive (format 2, snapshot 1): views over the current data.
-- Run from inside the archive folder: cd ARCHIVE && duckdb -init current.sql
CREATE OR REPLACE VIEW experiments AS SELECT * FROM read_parquet('experiments/*/*.parquet');
CREATE OR REPLACE VIEW runs AS SELECT * FROM read_parquet('runs/*/*.parquet');
CREATE OR REPLACE VIEW params AS SELECT * FROM read_parquet('params/*/*.parquet');
CREATE OR REPLACE VIEW tags AS SELECT * FROM read_parquet('tags/*/*.parquet');
CREATE OR REPLACE VIEW metrics AS SELECT * FROM read_parquet('metrics/*/*.parquet');
CREATE OR REPLACE VIEW logs AS SELECT * FROM read_parquet('logs/*/*.parquet');
CREATE OR REPLACE VIEW artifacts AS SELECT * FROM read_parquet('artifacts/*/*.parquet');
CREATE OR REPLACE VIEW inputs AS SELECT * FROM read_parquet('inputs/*/*.parquet');
