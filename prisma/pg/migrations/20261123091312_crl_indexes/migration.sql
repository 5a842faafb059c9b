-- DropIndex
DROP INDEX "Certificate_issuerId_crlShard_status_idx";

-- CreateIndex
CREATE INDEX "Certificate_issuerId_crlShard_status_serialHex_idx" ON "Certificate"("issuerId", "crlShard", "status", "serialHex");

-- CreateIndex
CREATE INDEX "Certificate_holdReleasedAt_idx" ON "Certificate"("holdReleasedAt");
