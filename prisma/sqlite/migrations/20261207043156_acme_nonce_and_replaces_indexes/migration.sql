-- DropIndex
DROP INDEX "AcmeOrder_replaces_idx";

-- DropIndex
DROP INDEX "AcmeUsedNonce_expiresAt_idx";

-- CreateIndex
CREATE INDEX "AcmeOrder_replaces_idx" ON "AcmeOrder"("replaces") WHERE "replaces" IS NOT NULL;
