-- AlterTable
ALTER TABLE "Device" ADD COLUMN "enrollingUntil" DATETIME;
