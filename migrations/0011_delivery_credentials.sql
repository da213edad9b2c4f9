-- Credential header and query values of a delivery whose trigger's action templates
-- read headers or the query: the stored headers and query show them redacted, and the
-- execution renders its action from these. Never part of the API's views.
ALTER TABLE deliveries ADD COLUMN credentials TEXT;
