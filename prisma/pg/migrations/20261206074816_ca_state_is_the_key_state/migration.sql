-- The CA state becomes the key state (NIST SP 800-57): carry over any state other than active.
UPDATE "CertificateAuthority" SET "keyState" = CASE "state" WHEN 'destroyed' THEN 'destroyed' WHEN 'revoked' THEN 'compromised' WHEN 'retired' THEN 'deactivated' ELSE 'active' END;
-- AlterTable
ALTER TABLE "CertificateAuthority" DROP COLUMN "state";
