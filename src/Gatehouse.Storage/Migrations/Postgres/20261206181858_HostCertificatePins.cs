using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Gatehouse.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class HostCertificatePins : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "CertificatePin",
                table: "Hosts",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "CertificatePinnedAt",
                table: "Hosts",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "CertificatePinnedBy",
                table: "Hosts",
                type: "character varying(16)",
                maxLength: 16,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "CertificatePin",
                table: "Hosts");

            migrationBuilder.DropColumn(
                name: "CertificatePinnedAt",
                table: "Hosts");

            migrationBuilder.DropColumn(
                name: "CertificatePinnedBy",
                table: "Hosts");
        }
    }
}
