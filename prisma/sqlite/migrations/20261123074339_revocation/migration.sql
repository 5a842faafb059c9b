-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN "holdReleasedAt" DATETIME;
ALTER TABLE "Certificate" ADD COLUMN "revokedBy" TEXT;

-- CreateTable
CREATE TABLE "CrlSequence" (
    "caId" TEXT NOT NULL PRIMARY KEY,
    "last" BIGINT NOT NULL DEFAULT 0
);

-- CreateTable
CREATE TABLE "Crl" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "caId" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "crlNumber" BIGINT NOT NULL,
    "baseCrlNumber" BIGINT,
    "thisUpdate" DATETIME NOT NULL,
    "nextUpdate" DATETIME NOT NULL,
    "entries" INTEGER NOT NULL,
    "der" BLOB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "OcspResponse" (
    "issuerId" TEXT NOT NULL,
    "serialHex" TEXT NOT NULL,
    "der" BLOB NOT NULL,
    "thisUpdate" DATETIME NOT NULL,
    "nextUpdate" DATETIME NOT NULL,

    PRIMARY KEY ("issuerId", "serialHex")
);

-- CreateIndex
CREATE UNIQUE INDEX "Crl_caId_scope_crlNumber_key" ON "Crl"("caId", "scope", "crlNumber");

-- CreateIndex
CREATE INDEX "OcspResponse_nextUpdate_idx" ON "OcspResponse"("nextUpdate");

-- CreateIndex
CREATE INDEX "Certificate_issuerId_crlShard_status_idx" ON "Certificate"("issuerId", "crlShard", "status");

-- CreateIndex
CREATE INDEX "Certificate_revokedAt_idx" ON "Certificate"("revokedAt");
