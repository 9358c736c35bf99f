#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d):
# one role and database per owner, so Temporal and Handrail cannot touch each other's tables.
# Passwords go in as psql variables (:'name'), never pasted into SQL text.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" -v handrail_password="$HANDRAIL_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE ROLE handrail LOGIN PASSWORD :'handrail_password';
CREATE DATABASE handrail OWNER handrail;
SQL
