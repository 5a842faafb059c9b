-- CreateTable
CREATE TABLE "KeyStateEvent" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "caId" TEXT NOT NULL,
    "from" TEXT,
    "to" TEXT NOT NULL,
    "at" DATETIME NOT NULL,
    "actor" TEXT NOT NULL,
    "reason" TEXT
);

-- CreateTable
CREATE TABLE "Custodian" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "credential" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    "removedAt" DATETIME
);

-- CreateTable
CREATE TABLE "QuorumRequest" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "operation" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    "expiresAt" DATETIME NOT NULL,
    "usedAt" DATETIME
);

-- CreateTable
CREATE TABLE "QuorumApproval" (
    "requestId" TEXT NOT NULL,
    "custodian" TEXT NOT NULL,
    "approvedAt" DATETIME NOT NULL,
    "signature" TEXT,

    PRIMARY KEY ("requestId", "custodian"),
    CONSTRAINT "QuorumApproval_requestId_fkey" FOREIGN KEY ("requestId") REFERENCES "QuorumRequest" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_CertificateAuthority" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'active',
    "parentId" TEXT,
    "certDer" BLOB NOT NULL,
    "subject" TEXT NOT NULL,
    "skiHex" TEXT NOT NULL,
    "keyRef" TEXT NOT NULL,
    "keyState" TEXT NOT NULL DEFAULT 'active',
    "keyStateAt" DATETIME,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_CertificateAuthority" ("certDer", "createdAt", "id", "keyRef", "name", "notAfter", "notBefore", "parentId", "role", "skiHex", "state", "subject", "updatedAt") SELECT "certDer", "createdAt", "id", "keyRef", "name", "notAfter", "notBefore", "parentId", "role", "skiHex", "state", "subject", "updatedAt" FROM "CertificateAuthority";
DROP TABLE "CertificateAuthority";
ALTER TABLE "new_CertificateAuthority" RENAME TO "CertificateAuthority";
CREATE UNIQUE INDEX "CertificateAuthority_name_key" ON "CertificateAuthority"("name");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE INDEX "KeyStateEvent_caId_id_idx" ON "KeyStateEvent"("caId", "id");

-- CreateIndex
CREATE INDEX "QuorumRequest_hash_idx" ON "QuorumRequest"("hash");
