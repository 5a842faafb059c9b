-- CreateTable
CREATE TABLE "CertificateAuthority" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'active',
    "parentId" TEXT,
    "certDer" BLOB NOT NULL,
    "subject" TEXT NOT NULL,
    "skiHex" TEXT NOT NULL,
    "keyRef" TEXT NOT NULL,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "KeyBlob" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "algorithm" TEXT NOT NULL,
    "envelope" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'active',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "Certificate" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "issuerId" TEXT NOT NULL,
    "serialHex" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "sans" TEXT NOT NULL,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "lintDer" BLOB,
    "der" BLOB,
    "crlShard" INTEGER NOT NULL,
    "requestedVia" TEXT NOT NULL,
    "requestedBy" TEXT,
    "revokedAt" DATETIME,
    "revocationReason" INTEGER,
    "invalidityDate" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "issuedAt" DATETIME,
    CONSTRAINT "Certificate_issuerId_fkey" FOREIGN KEY ("issuerId") REFERENCES "CertificateAuthority" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "ApiToken" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT,
    "role" TEXT NOT NULL,
    "hashHex" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" DATETIME,
    "revokedAt" DATETIME
);

-- CreateTable
CREATE TABLE "AuditEvent" (
    "seq" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" DATETIME NOT NULL,
    "type" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "data" TEXT NOT NULL,
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "CertificateAuthority_name_key" ON "CertificateAuthority"("name");

-- CreateIndex
CREATE INDEX "Certificate_status_issuerId_idx" ON "Certificate"("status", "issuerId");

-- CreateIndex
CREATE UNIQUE INDEX "Certificate_issuerId_serialHex_key" ON "Certificate"("issuerId", "serialHex");

-- CreateIndex
CREATE UNIQUE INDEX "ApiToken_hashHex_key" ON "ApiToken"("hashHex");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEvent_hash_key" ON "AuditEvent"("hash");
