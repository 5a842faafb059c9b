-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN "keyId" TEXT;
