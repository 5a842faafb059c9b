-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN     "renewalWindowEnd" TIMESTAMP(3),
ADD COLUMN     "renewalWindowStart" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "AcmeAccount" (
    "id" TEXT NOT NULL,
    "thumbprint" TEXT NOT NULL,
    "jwk" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "contact" TEXT NOT NULL,
    "termsAgreed" BOOLEAN NOT NULL,
    "eabKeyId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AcmeAccount_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeOrder" (
    "id" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    "identifiers" TEXT NOT NULL,
    "authorizationIds" TEXT NOT NULL,
    "notBefore" TIMESTAMP(3),
    "notAfter" TIMESTAMP(3),
    "error" TEXT,
    "issuerId" TEXT,
    "certificateSerial" TEXT,
    "replaces" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AcmeOrder_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeAuthorization" (
    "id" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "identifierType" TEXT NOT NULL,
    "identifierValue" TEXT NOT NULL,
    "wildcard" BOOLEAN NOT NULL,
    "status" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    "challenges" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AcmeAuthorization_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeUsedNonce" (
    "nonce" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AcmeUsedNonce_pkey" PRIMARY KEY ("nonce")
);

-- CreateTable
CREATE TABLE "AcmeEabKey" (
    "keyId" TEXT NOT NULL,
    "hmacKey" BYTEA NOT NULL,
    "directory" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "boundAccountId" TEXT,
    "boundAt" TIMESTAMP(3),

    CONSTRAINT "AcmeEabKey_pkey" PRIMARY KEY ("keyId")
);

-- CreateTable
CREATE TABLE "InstanceSecret" (
    "name" TEXT NOT NULL,
    "value" BYTEA NOT NULL,

    CONSTRAINT "InstanceSecret_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE UNIQUE INDEX "AcmeAccount_thumbprint_key" ON "AcmeAccount"("thumbprint");

-- CreateIndex
CREATE INDEX "AcmeOrder_accountId_createdAt_idx" ON "AcmeOrder"("accountId", "createdAt");

-- CreateIndex
CREATE INDEX "AcmeOrder_replaces_idx" ON "AcmeOrder"("replaces");

-- CreateIndex
CREATE INDEX "AcmeAuthorization_reuse_idx" ON "AcmeAuthorization"("accountId", "identifierType", "identifierValue", "wildcard", "status", "expires");

-- CreateIndex
CREATE INDEX "AcmeUsedNonce_expiresAt_idx" ON "AcmeUsedNonce"("expiresAt");

-- AddForeignKey
ALTER TABLE "AcmeOrder" ADD CONSTRAINT "AcmeOrder_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "AcmeAccount"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AcmeAuthorization" ADD CONSTRAINT "AcmeAuthorization_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "AcmeAccount"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
