-- A typical hand-rolled tracking schema: training scripts insert a row into
-- runs when they start, their hyperparameters into params, a row into
-- metrics per logged value, their console output into logs and the paths
-- of the files they saved into artifacts, and what is no number into media
-- (the images they saved, histograms and notes as JSON); every write to a run's rows also
-- sets its updated_at. It runs unchanged on PostgreSQL, MySQL/MariaDB
-- and SQLite. runferry reads it through mapping.yaml (docs/SQL-MAPPING.md);
-- the rows below are the sample the example's test reads.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    state       VARCHAR(20) NOT NULL,  -- done, running, crashed, stopped
    started_at  TIMESTAMP NOT NULL,    -- UTC
    finished_at TIMESTAMP NULL,
    config      TEXT,                  -- the training config as JSON
    updated_at  TIMESTAMP NOT NULL     -- UTC; moved by every write to the run
);
CREATE TABLE params (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name   VARCHAR(200) NOT NULL,
    value  TEXT NOT NULL
);
CREATE TABLE metrics (
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    metric    VARCHAR(200) NOT NULL,
    step      INTEGER NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    logged_at BIGINT NOT NULL          -- Unix milliseconds
);
CREATE INDEX metrics_run ON metrics (run_id, metric, step);
CREATE TABLE logs (
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    seq       INTEGER NOT NULL,
    stream    VARCHAR(6) NOT NULL,     -- out or err
    line      TEXT NOT NULL,
    logged_at BIGINT NOT NULL          -- Unix milliseconds
);
CREATE TABLE artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    path   VARCHAR(500) NOT NULL,      -- the file's name in the run
    uri    VARCHAR(1000) NOT NULL      -- where it is: a path (relative to the mapping file) or a URL
);
CREATE TABLE media (
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    name      VARCHAR(200) NOT NULL,
    step      INTEGER NOT NULL,
    path      VARCHAR(500) NULL,       -- an image the run saved (one of its artifacts)
    data      TEXT NULL,               -- or the value as JSON: a histogram, a note
    logged_at BIGINT NOT NULL          -- Unix milliseconds
);

INSERT INTO runs VALUES (1, 'baseline', 'done', '2024-03-01 12:00:00', '2024-03-01 13:30:00', '{"lr": 0.01, "model": {"depth": 18}}', '2024-03-01 13:30:00');
INSERT INTO runs VALUES (2, 'bigger lr', 'crashed', '2024-03-02 09:00:00', '2024-03-02 09:05:00', NULL, '2024-03-02 09:05:00');
INSERT INTO runs VALUES (3, 'still training', 'running', '2024-03-03 08:00:00', NULL, NULL, '2024-03-03 08:00:00');
INSERT INTO params VALUES (1, 'lr', '0.01');
INSERT INTO params VALUES (1, 'batch_size', '32');
INSERT INTO params VALUES (2, 'lr', '0.1');
INSERT INTO metrics VALUES (1, 'loss', 0, 2.5, 1709294400000);
INSERT INTO metrics VALUES (1, 'loss', 1, 1.25, 1709294401000);
INSERT INTO metrics VALUES (1, 'loss', 2, 0.625, 1709294402000);
INSERT INTO metrics VALUES (1, 'val/acc', 0, 0.5, 1709294400500);
INSERT INTO metrics VALUES (1, 'val/acc', 2, 0.75, 1709294402500);
INSERT INTO metrics VALUES (2, 'loss', 0, 3.5, 1709370000000);
INSERT INTO metrics VALUES (2, 'loss', 1, 9.0, 1709370001000);
INSERT INTO logs VALUES (1, 1, 'out', 'epoch 0: loss 2.5', 1709294400000);
INSERT INTO logs VALUES (1, 2, 'err', 'warning: lr schedule ends early', 1709294401000);
INSERT INTO logs VALUES (1, 3, 'out', 'done', 1709294402000);
INSERT INTO artifacts VALUES (1, 'model/config.json', 'files/1/config.json');
INSERT INTO artifacts VALUES (1, 'media/samples_0.png', 'files/1/samples_0.png');
INSERT INTO artifacts VALUES (1, 'media/samples_2.png', 'files/1/samples_2.png');
INSERT INTO media VALUES (1, 'samples', 0, 'media/samples_0.png', NULL, 1709294400000);
INSERT INTO media VALUES (1, 'weights', 0, NULL, '{"_type": "histogram", "values": [3, 5], "bins": [0, 0.5, 1]}', 1709294400000);
INSERT INTO media VALUES (1, 'note', 1, NULL, '"lr warm-up done"', 1709294401000);
INSERT INTO media VALUES (1, 'samples', 2, 'media/samples_2.png', NULL, 1709294402000);
