-- CreateIndex
CREATE INDEX "Certificate_revoked_serialHex_idx" ON "Certificate"("issuerId", "serialHex") WHERE ("status" = 'revoked');
