-- The CA state becomes the key state (NIST SP 800-57): carry over any state other than active.
UPDATE "CertificateAuthority" SET "keyState" = CASE "state" WHEN 'destroyed' THEN 'destroyed' WHEN 'revoked' THEN 'compromised' WHEN 'retired' THEN 'deactivated' ELSE 'active' END;
-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_CertificateAuthority" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
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
INSERT INTO "new_CertificateAuthority" ("certDer", "createdAt", "id", "keyRef", "keyState", "keyStateAt", "name", "notAfter", "notBefore", "parentId", "role", "skiHex", "subject", "updatedAt") SELECT "certDer", "createdAt", "id", "keyRef", "keyState", "keyStateAt", "name", "notAfter", "notBefore", "parentId", "role", "skiHex", "subject", "updatedAt" FROM "CertificateAuthority";
DROP TABLE "CertificateAuthority";
ALTER TABLE "new_CertificateAuthority" RENAME TO "CertificateAuthority";
CREATE UNIQUE INDEX "CertificateAuthority_name_key" ON "CertificateAuthority"("name");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
