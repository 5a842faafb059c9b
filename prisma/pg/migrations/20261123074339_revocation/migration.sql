-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN     "holdReleasedAt" TIMESTAMP(3),
ADD COLUMN     "revokedBy" TEXT;

-- CreateTable
CREATE TABLE "CrlSequence" (
    "caId" TEXT NOT NULL,
    "last" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "CrlSequence_pkey" PRIMARY KEY ("caId")
);

-- CreateTable
CREATE TABLE "Crl" (
    "id" SERIAL NOT NULL,
    "caId" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "crlNumber" BIGINT NOT NULL,
    "baseCrlNumber" BIGINT,
    "thisUpdate" TIMESTAMP(3) NOT NULL,
    "nextUpdate" TIMESTAMP(3) NOT NULL,
    "entries" INTEGER NOT NULL,
    "der" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Crl_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "OcspResponse" (
    "issuerId" TEXT NOT NULL,
    "serialHex" TEXT NOT NULL,
    "der" BYTEA NOT NULL,
    "thisUpdate" TIMESTAMP(3) NOT NULL,
    "nextUpdate" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "OcspResponse_pkey" PRIMARY KEY ("issuerId","serialHex")
);

-- CreateIndex
CREATE UNIQUE INDEX "Crl_caId_scope_crlNumber_key" ON "Crl"("caId", "scope", "crlNumber");

-- CreateIndex
CREATE INDEX "OcspResponse_nextUpdate_idx" ON "OcspResponse"("nextUpdate");

-- CreateIndex
CREATE INDEX "Certificate_issuerId_crlShard_status_idx" ON "Certificate"("issuerId", "crlShard", "status");

-- CreateIndex
CREATE INDEX "Certificate_revokedAt_idx" ON "Certificate"("revokedAt");
