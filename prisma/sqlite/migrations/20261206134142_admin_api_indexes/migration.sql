-- CreateIndex
CREATE INDEX "AcmeOrder_status_createdAt_idx" ON "AcmeOrder"("status", "createdAt");

-- CreateIndex
CREATE INDEX "AcmeOrder_createdAt_idx" ON "AcmeOrder"("createdAt");

-- CreateIndex
CREATE INDEX "AuditEvent_type_seq_idx" ON "AuditEvent"("type", "seq");

-- CreateIndex
CREATE INDEX "AuditEvent_actor_seq_idx" ON "AuditEvent"("actor", "seq");

-- CreateIndex
CREATE INDEX "AuditEvent_at_idx" ON "AuditEvent"("at");

-- CreateIndex
CREATE INDEX "Certificate_issuerId_id_idx" ON "Certificate"("issuerId", "id");

-- CreateIndex
CREATE INDEX "Certificate_profile_id_idx" ON "Certificate"("profile", "id");

-- CreateIndex
CREATE INDEX "Certificate_status_id_idx" ON "Certificate"("status", "id");

-- CreateIndex
CREATE INDEX "Certificate_notAfter_idx" ON "Certificate"("notAfter");

-- CreateIndex
CREATE INDEX "Certificate_serialHex_idx" ON "Certificate"("serialHex");

-- CreateIndex
CREATE INDEX "Certificate_issuedAt_idx" ON "Certificate"("issuedAt");
