-- An append may claim unique values (reservations) in its own statement: the events are
-- written only if every claim is won (event_store::append). A claim lost after others were
-- won must undo them, so the statement fails whole through this function, with its own
-- SQLSTATE that the writer reads as "a value is taken".
CREATE FUNCTION mauntic_claim_taken() RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'a value claimed with these events is held by another owner'
        USING ERRCODE = 'MC409';
END
$$;
