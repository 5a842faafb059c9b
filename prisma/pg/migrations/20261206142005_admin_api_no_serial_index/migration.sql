-- DropIndex
DROP INDEX "Certificate_serialHex_idx";
