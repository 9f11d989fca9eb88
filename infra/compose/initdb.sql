-- Databases of the server profile (the audit database is POSTGRES_DB).
CREATE DATABASE veracity_mlflow OWNER veracity;
CREATE DATABASE veracity_prefect OWNER veracity;
