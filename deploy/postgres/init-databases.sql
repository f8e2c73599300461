-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d),
-- as POSTGRES_USER (govflow). One database per service: each service owns its tables and
-- no service reads another's. Temporal's two databases (temporal, temporal_visibility)
-- are created by deploy/temporal/setup-schema.sh with temporal-sql-tool instead.
CREATE DATABASE govflow_identity OWNER govflow;
CREATE DATABASE govflow_certificates OWNER govflow;
CREATE DATABASE govflow_matters OWNER govflow;
