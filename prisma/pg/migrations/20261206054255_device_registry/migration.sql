-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN     "deviceId" TEXT;

-- CreateTable
CREATE TABLE "Device" (
    "id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "issuerId" TEXT,
    "reprovision" TEXT NOT NULL DEFAULT 'never',
    "attributes" TEXT NOT NULL DEFAULT '{}',
    "secretHash" TEXT,
    "eabKeyId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Device_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ManufacturerCa" (
    "name" TEXT NOT NULL,
    "certDer" BYTEA NOT NULL,
    "subject" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "notAfter" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ManufacturerCa_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE INDEX "Device_status_idx" ON "Device"("status");

-- CreateIndex
CREATE UNIQUE INDEX "ManufacturerCa_sha256_key" ON "ManufacturerCa"("sha256");

-- CreateIndex
CREATE INDEX "Certificate_deviceId_status_idx" ON "Certificate"("deviceId", "status");
