-- Server processes serving the bench workers' connections (matched by application_name).
SELECT pid FROM pg_stat_activity WHERE application_name = $1
