-- DropIndex
DROP INDEX "Certificate_issuedAt_idx";

-- DropIndex
DROP INDEX "Certificate_deviceId_status_idx";

-- DropIndex
DROP INDEX "Certificate_holdReleasedAt_idx";

-- DropIndex
DROP INDEX "Certificate_issuerId_crlShard_status_serialHex_idx";

-- DropIndex
DROP INDEX "Certificate_revokedAt_idx";

-- DropIndex
DROP INDEX "Certificate_status_issuerId_idx";

-- CreateIndex
CREATE INDEX "Certificate_issuerId_crlShard_serialHex_idx" ON "Certificate"("issuerId", "crlShard", "serialHex") WHERE "status" = 'revoked';

-- CreateIndex
CREATE INDEX "Certificate_revokedAt_idx" ON "Certificate"("revokedAt") WHERE "revokedAt" IS NOT NULL;

-- CreateIndex
CREATE INDEX "Certificate_holdReleasedAt_idx" ON "Certificate"("holdReleasedAt") WHERE "holdReleasedAt" IS NOT NULL;

-- CreateIndex
CREATE INDEX "Certificate_deviceId_status_idx" ON "Certificate"("deviceId", "status") WHERE "deviceId" IS NOT NULL;

-- CreateIndex
CREATE INDEX "Certificate_issuerId_profile_notAfter_idx" ON "Certificate"("issuerId", "profile", "notAfter") WHERE "keyId" IS NOT NULL;

-- CreateIndex
CREATE INDEX "Certificate_issuedAt_idx" ON "Certificate"("issuedAt") WHERE "issuedAt" IS NOT NULL;
