-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN "deviceId" TEXT;

-- CreateTable
CREATE TABLE "Device" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "status" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "issuerId" TEXT,
    "reprovision" TEXT NOT NULL DEFAULT 'never',
    "attributes" TEXT NOT NULL DEFAULT '{}',
    "secretHash" TEXT,
    "eabKeyId" TEXT,
    "createdAt" DATETIME NOT NULL,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "ManufacturerCa" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "certDer" BLOB NOT NULL,
    "subject" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "createdAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE INDEX "Device_status_idx" ON "Device"("status");

-- CreateIndex
CREATE UNIQUE INDEX "ManufacturerCa_sha256_key" ON "ManufacturerCa"("sha256");

-- CreateIndex
CREATE INDEX "Certificate_deviceId_status_idx" ON "Certificate"("deviceId", "status");
