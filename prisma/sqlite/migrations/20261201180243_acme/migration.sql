-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN "renewalWindowEnd" DATETIME;
ALTER TABLE "Certificate" ADD COLUMN "renewalWindowStart" DATETIME;

-- CreateTable
CREATE TABLE "AcmeAccount" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "thumbprint" TEXT NOT NULL,
    "jwk" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "contact" TEXT NOT NULL,
    "termsAgreed" BOOLEAN NOT NULL,
    "eabKeyId" TEXT,
    "createdAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "AcmeOrder" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "accountId" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "expires" DATETIME NOT NULL,
    "identifiers" TEXT NOT NULL,
    "authorizationIds" TEXT NOT NULL,
    "notBefore" DATETIME,
    "notAfter" DATETIME,
    "error" TEXT,
    "issuerId" TEXT,
    "certificateSerial" TEXT,
    "replaces" TEXT,
    "createdAt" DATETIME NOT NULL,
    CONSTRAINT "AcmeOrder_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "AcmeAccount" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "AcmeAuthorization" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "accountId" TEXT NOT NULL,
    "identifierType" TEXT NOT NULL,
    "identifierValue" TEXT NOT NULL,
    "wildcard" BOOLEAN NOT NULL,
    "status" TEXT NOT NULL,
    "expires" DATETIME NOT NULL,
    "challenges" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    CONSTRAINT "AcmeAuthorization_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "AcmeAccount" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "AcmeUsedNonce" (
    "nonce" TEXT NOT NULL PRIMARY KEY,
    "expiresAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "AcmeEabKey" (
    "keyId" TEXT NOT NULL PRIMARY KEY,
    "hmacKey" BLOB NOT NULL,
    "directory" TEXT,
    "createdAt" DATETIME NOT NULL,
    "boundAccountId" TEXT,
    "boundAt" DATETIME
);

-- CreateTable
CREATE TABLE "InstanceSecret" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "value" BLOB NOT NULL
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
