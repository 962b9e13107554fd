-- sql/functions/logs/defaults.sql
-- severity_number for a row written without one: a plain INSERT from the SQL editor, as
-- the seed's guide shows it (INSERT INTO system_logs (source_type, source_id, log_level,
-- message) VALUES (...); id and "timestamp" have column defaults, migration 0070). A
-- default cannot read log_level, so a BEFORE INSERT trigger derives it, and only for
-- such rows: the WHEN clause is checked without calling the function, and the hub's own
-- paths always send severity_number. COPY into system_logs loses no batching to it
-- either: the rollup trigger's transition table already makes COPY into this
-- partitioned table insert row by row.

CREATE OR REPLACE FUNCTION hub_internal.func_log_severity_default()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    -- Unknown levels raise func_log_severity's one-line error naming the accepted ones;
    -- the aliases it accepts (warn, fatal, any case) are stored under their canonical name.
    NEW.severity_number := hub_internal.func_log_severity(NEW.log_level);
    NEW.log_level := CASE NEW.severity_number WHEN 5 THEN 'DEBUG' WHEN 9 THEN 'INFO'
                          WHEN 13 THEN 'WARNING' WHEN 17 THEN 'ERROR' WHEN 21 THEN 'CRITICAL' END;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION hub_internal.func_log_severity_default() IS
    'BEFORE INSERT trigger of system_logs for rows without severity_number (a plain INSERT from the SQL editor): derives it from log_level (DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21; WARN and FATAL and any case accepted and stored canonically); an unknown level raises invalid_parameter_value naming the accepted ones.';

CREATE OR REPLACE TRIGGER system_logs_severity_default
    BEFORE INSERT ON public.system_logs
    FOR EACH ROW WHEN (NEW.severity_number IS NULL)
    EXECUTE FUNCTION hub_internal.func_log_severity_default();

SELECT hub_internal.func_hub_secure(
    p_functions => ARRAY['hub_internal.func_log_severity_default()']::regprocedure[]);
